//! The one spawn helper: every child process cordon starts goes through
//! `spawn`. The jail (a later layer) extends this function, so no child can
//! skip it.
//!
//! The child is forked and re-executes the supervisor's own executable from
//! an fd (execveat with AT_EMPTY_PATH), so no path is needed in the child.
//! It inherits exactly: the control socket (fd 3), the read end of the death
//! pipe (fd 4), then the caller's keep list at fds 5, 6, ... Everything else
//! is closed, the signal mask is cleared and the environment is empty.
//! Parent death reaches the child as EOF on the death pipe (its write end
//! lives only in the supervisor), backed by PR_SET_PDEATHSIG.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use protocol::device::DeviceKind;

/// Where a child finds its control socket.
pub const CONTROL_FD: RawFd = 3;
/// Where a child finds the read end of its death pipe.
pub const DEATH_PIPE_FD: RawFd = 4;
/// Where a child finds the first fd of its keep list.
pub const FIRST_KEPT_FD: RawFd = 5;
/// Most fds a keep list may hold.
pub const MAX_KEPT: usize = 32;
/// Temporaries used while fds are moved into place sit at or above this.
const SCRATCH_FD: RawFd = 64;

/// What a child process is for; its argv[1].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The KVM VM and its vCPU threads.
    Vm,
    /// A vhost-user device backend.
    Device(DeviceKind),
}

impl Role {
    /// Every role, for the binary's dispatch.
    pub const ALL: [Role; 4] = [
        Role::Vm,
        Role::Device(DeviceKind::Console),
        Role::Device(DeviceKind::Block),
        Role::Device(DeviceKind::Rng),
    ];

    pub const fn arg(self) -> &'static str {
        match self {
            Role::Vm => "vm",
            Role::Device(DeviceKind::Console) => "device-console",
            Role::Device(DeviceKind::Block) => "device-block",
            Role::Device(DeviceKind::Rng) => "device-rng",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot open cordon's own executable")]
    OpenSelf(#[source] std::io::Error),
    #[error("cannot create the control socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot create the death pipe")]
    Pipe(#[source] std::io::Error),
    #[error("too many fds to hand over ({0})")]
    TooManyFds(usize),
    #[error("fork failed")]
    Fork(#[source] std::io::Error),
    #[error("cannot open a pidfd for the child")]
    Pidfd(#[source] std::io::Error),
}

/// The supervisor's handle on a child.
#[derive(Debug)]
pub struct Child {
    pub role: Role,
    pub pid: libc::pid_t,
    /// Readable when the child has exited.
    pub pidfd: OwnedFd,
    pub control: UnixStream,
    /// Closing it (by dropping, or by the supervisor dying) ends the child.
    _death_pipe: OwnedFd,
}

/// An fd of cordon's own executable, opened once at start-up.
pub fn open_self() -> Result<File, SpawnError> {
    File::open("/proc/self/exe").map_err(SpawnError::OpenSelf)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SpawnError::Pipe(std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts `role` from `exe` with `keep` at fds 5, 6, ...
pub fn spawn(exe: &File, role: Role, keep: &[BorrowedFd]) -> Result<Child, SpawnError> {
    if keep.len() > MAX_KEPT {
        return Err(SpawnError::TooManyFds(keep.len()));
    }
    let (control, child_control) = UnixStream::pair().map_err(SpawnError::Socket)?;
    let (death_read, death_write) = pipe()?;
    let mut sources = vec![child_control.as_raw_fd(), death_read.as_raw_fd()];
    sources.extend(keep.iter().map(|fd| fd.as_raw_fd()));
    // Everything the child touches is allocated before fork.
    let argv0 = c"cordon";
    let arg1 = CString::new(role.arg()).unwrap_or_default();
    let argv = [argv0.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let mut scratch = [0 as RawFd; MAX_KEPT + 2];

    // SAFETY: fork has no memory-safety preconditions; the child branch below
    // only makes async-signal-safe calls on memory allocated before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Fork(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child; see `exec_child`.
        unsafe { exec_child(exe.as_raw_fd(), &sources, &mut scratch, &argv, &envp) }
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        let err = std::io::Error::last_os_error();
        // SAFETY: `pid` is our child; kill and waitpid on it are sound.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(SpawnError::Pidfd(err));
    }
    // SAFETY: pidfd_open succeeded, so `raw` is a new fd we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    drop(child_control);
    drop(death_read);
    Ok(Child {
        role,
        pid,
        pidfd,
        control,
        _death_pipe: death_write,
    })
}

/// Moves `sources` to fds 3, 4, ..., closes everything else and execs.
///
/// # Safety
///
/// Must only be called in a child right after fork: it calls only
/// async-signal-safe functions, and `argv`/`envp` must be NULL-terminated
/// arrays of valid C strings.
unsafe fn exec_child(
    exe: RawFd,
    sources: &[RawFd],
    scratch: &mut [RawFd],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: the caller guarantees we are a forked child; every call here is
    // async-signal-safe and only touches memory allocated before fork.
    unsafe {
        let parent = libc::getppid();
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
            libc::_exit(127);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // First out of the way (sources may sit on targets), then into place;
        // dup2 to a different number clears close-on-exec on the target.
        let exe = libc::fcntl(exe, libc::F_DUPFD_CLOEXEC, SCRATCH_FD);
        if exe < 0 {
            libc::_exit(127);
        }
        for (slot, &fd) in scratch.iter_mut().zip(sources) {
            *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, SCRATCH_FD);
            if *slot < 0 {
                libc::_exit(127);
            }
        }
        for (i, &fd) in scratch.iter().take(sources.len()).enumerate() {
            if libc::dup2(fd, CONTROL_FD + i as RawFd) < 0 {
                libc::_exit(127);
            }
        }
        // Close everything from the first unused number up, except the exe
        // fd, which is close-on-exec anyway.
        let first_free = (CONTROL_FD + sources.len() as RawFd) as libc::c_uint;
        libc::close_range(first_free, (exe - 1) as libc::c_uint, 0);
        libc::close_range((exe + 1) as libc::c_uint, libc::c_uint::MAX, 0);
        libc::syscall(
            libc::SYS_execveat,
            exe,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        libc::_exit(127)
    }
}
