//! SIGINT and SIGTERM for the supervisor, read from a signalfd so the event
//! loop can poll them with the child's fds.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A signalfd for SIGINT and SIGTERM, with both blocked in this thread.
/// Children get a cleared mask from the spawn helper.
pub struct StopSignals {
    /// None when embedded: the host program keeps its own signals.
    fd: Option<OwnedFd>,
}

impl StopSignals {
    /// No signal handling: for a supervisor embedded in another program,
    /// whose SIGINT and SIGTERM stay its own.
    pub fn none() -> StopSignals {
        StopSignals { fd: None }
    }

    pub fn new() -> std::io::Result<StopSignals> {
        // SAFETY: `set` is a valid sigset_t initialised by sigemptyset before
        // use; the calls only read it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(StopSignals {
                fd: Some(OwnedFd::from_raw_fd(fd)),
            })
        }
    }

    /// The fd to poll; -1 (which poll skips) without one.
    pub fn raw(&self) -> i32 {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    /// The pending signal's number, if one is pending.
    pub fn take(&self) -> Option<i32> {
        self.fd.as_ref()?;
        // SAFETY: signalfd_siginfo is plain data; all-zero is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: we read at most `size` bytes into `info`, which we own.
        let n = unsafe {
            libc::read(
                self.raw(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}
