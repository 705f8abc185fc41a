//! Namespaces: one user, net, ipc and uts namespace per sandbox, shared by
//! all its processes; a mount and a pid namespace per process.
//!
//! # How the spawn helper uses this
//!
//! Before fork (supervisor, any number of threads):
//! [`SandboxNamespaces::create`] once per sandbox. It forks a short-lived
//! holder that unshares user+net+ipc+uts, writes its uid/gid maps from the
//! supervisor, opens `/proc/HOLDER/ns/{user,net,ipc,uts}` and reaps it: the
//! four fds keep the namespaces alive, no process has to. For each child,
//! [`SandboxNamespaces::fds`] gives a `Copy` set of raw fds and a pipe is
//! made for the jailed pid.
//!
//! Between fork and exec (the forked child, async-signal-safe calls only):
//! [`enter_in_child`]: `setns` into the user namespace first (which gives
//! the child every capability there), then net, ipc, uts; then
//! `clone(CLONE_NEWNS | CLONE_NEWPID | CLONE_PARENT)`. The intermediate
//! process writes the new pid to the pipe and `_exit`s; the clone is a
//! child of the supervisor (CLONE_PARENT), pid 1 of its own pid namespace,
//! in its own mount namespace, and goes on to exec. The cgroup join
//! ([`crate::cgroup::join_self`]) comes before `enter_in_child`, while the
//! child still has the supervisor's credentials.
//!
//! After fork (supervisor): [`collect_child`] reads the jailed pid and reaps
//! the intermediate process. The jailed child's `getppid()` is 0 (its parent
//! is outside its pid namespace), so parent death is the death pipe's job;
//! PR_SET_PDEATHSIG must be set again in the jailed child (it is not
//! inherited across clone).
//!
//! After exec (the child's main): [`crate::root::enter_empty_root`] first.
//!
//! # Ids
//!
//! The supervisor's effective uid and gid map to 0 inside the sandbox's user
//! namespace, one id each, and `setgroups` is denied. Uid 0 inside is needed
//! because the child's capabilities must survive execve (the kernel keeps
//! them across exec only for uid 0) so that its main can still mount and
//! pivot_root; the privileges layer then drops them all. A one-id map is
//! what an unprivileged user may write without newuidmap, so the same code
//! runs for root and for any user with /dev/kvm access. All sandboxes of one
//! supervisor thus share one host uid: what keeps them apart is that each
//! process's pid namespace holds nothing but itself (it cannot name another
//! process to kill or ptrace it: ESRCH), plus the later layers.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::fds::pipe;

/// The hostname every sandbox sees in its uts namespace.
pub const HOSTNAME: &str = "cordon";

/// The namespaces [`SandboxNamespaces`] creates.
pub const SHARED_FLAGS: libc::c_int =
    libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
/// The namespaces [`enter_in_child`] creates per process.
pub const PER_PROCESS_FLAGS: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWPID;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("cannot create a pipe")]
    Pipe(#[source] std::io::Error),
    #[error("cannot fork the namespace holder")]
    Fork(#[source] std::io::Error),
    #[error("the kernel refused new user, net, ipc and uts namespaces (unshare); user namespaces are required")]
    Unshare(#[source] std::io::Error),
    #[error("cannot set the hostname in the new uts namespace")]
    Hostname(#[source] std::io::Error),
    #[error("cannot write {path}")]
    Map {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the namespace holder died before reporting")]
    HolderDied,
    #[error("the child did not report its pid ({0})")]
    ChildFailed(String),
    #[error("the child could not enter its sandbox at {0}")]
    Enter(#[source] EnterError),
}

/// The steps a child takes between fork and exec to enter its sandbox, in
/// order; [`EnterError::step`] is one of them.
pub const ENTER_STEPS: [&str; 6] = [
    "joining the sandbox's cgroup",
    "setns(user)",
    "setns(net)",
    "setns(ipc)",
    "setns(uts)",
    "clone(CLONE_NEWNS|CLONE_NEWPID)",
];

/// Which step of entering the sandbox failed, and its errno. `Copy` and
/// allocation-free so it can be made between fork and exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnterError {
    /// One of [`ENTER_STEPS`].
    pub step: &'static str,
    pub errno: i32,
}

impl EnterError {
    pub(crate) fn last(step: &'static str) -> Self {
        EnterError {
            step,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }

    /// The record [`report_failure`] writes: minus the step's index + 1,
    /// then the errno.
    fn record(self) -> [u8; 8] {
        let index = ENTER_STEPS
            .iter()
            .position(|s| *s == self.step)
            .unwrap_or(ENTER_STEPS.len());
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(-(index as i32) - 1).to_ne_bytes());
        b[4..].copy_from_slice(&self.errno.to_ne_bytes());
        b
    }
}

impl std::fmt::Display for EnterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.step,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for EnterError {}

/// One sandbox's user, net, ipc and uts namespaces, held by fds.
#[derive(Debug)]
pub struct SandboxNamespaces {
    user: OwnedFd,
    net: OwnedFd,
    ipc: OwnedFd,
    uts: OwnedFd,
    /// The host uid that is 0 inside.
    pub host_uid: libc::uid_t,
    /// The host gid that is 0 inside.
    pub host_gid: libc::gid_t,
}

/// The raw fds of a [`SandboxNamespaces`], for use between fork and exec.
/// Valid as long as the `SandboxNamespaces` they came from.
#[derive(Clone, Copy, Debug)]
pub struct NsFds {
    pub user: RawFd,
    pub net: RawFd,
    pub ipc: RawFd,
    pub uts: RawFd,
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: `pid` is our child; waitpid writes only to `status`.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

impl SandboxNamespaces {
    /// Creates a sandbox's user, net, ipc and uts namespaces. The caller's
    /// effective uid/gid become 0 inside; the hostname is [`HOSTNAME`]; the
    /// network namespace holds only a loopback, down. Safe to call from a
    /// multi-threaded process: the holder child makes only async-signal-safe
    /// calls.
    pub fn create() -> Result<Self, NamespaceError> {
        // SAFETY: geteuid/getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (ready_r, ready_w) = pipe().map_err(NamespaceError::Pipe)?;
        let (go_r, go_w) = pipe().map_err(NamespaceError::Pipe)?;
        let hostname = HOSTNAME.as_bytes();

        // SAFETY: the child branch only makes async-signal-safe calls on
        // memory allocated before the fork, and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(NamespaceError::Fork(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: we are the forked holder: close, unshare, sethostname,
            // write, read and _exit are async-signal-safe system calls on fds and
            // buffers that were valid before the fork.
            unsafe {
                // Our copy of the write end would keep the read below from
                // ever seeing EOF.
                libc::close(go_w.as_raw_fd());
                libc::close(ready_r.as_raw_fd());
                let mut report: [u8; 8] = [0; 8];
                if libc::unshare(SHARED_FLAGS) != 0 {
                    report[0] = 1;
                } else if libc::sethostname(hostname.as_ptr().cast(), hostname.len()) != 0 {
                    report[0] = 2;
                }
                if report[0] != 0 {
                    let errno = *libc::__errno_location();
                    report[4..].copy_from_slice(&errno.to_ne_bytes());
                }
                libc::write(ready_w.as_raw_fd(), report.as_ptr().cast(), report.len());
                // Wait for the supervisor to finish with /proc/PID (EOF).
                let mut byte = 0u8;
                libc::read(go_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                libc::_exit(0)
            }
        }
        drop(ready_w);
        drop(go_r);
        let result = Self::finish(pid, uid, gid, ready_r);
        drop(go_w);
        reap(pid);
        result
    }

    fn finish(
        pid: libc::pid_t,
        uid: libc::uid_t,
        gid: libc::gid_t,
        ready: OwnedFd,
    ) -> Result<Self, NamespaceError> {
        let mut report = [0u8; 8];
        File::from(ready)
            .read_exact(&mut report)
            .map_err(|_| NamespaceError::HolderDied)?;
        let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
        match report[0] {
            0 => {}
            1 => {
                return Err(NamespaceError::Unshare(std::io::Error::from_raw_os_error(
                    errno,
                )))
            }
            _ => {
                return Err(NamespaceError::Hostname(std::io::Error::from_raw_os_error(
                    errno,
                )))
            }
        }
        let write = |file: &str, text: String| {
            let path = format!("/proc/{pid}/{file}");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|source| NamespaceError::Map { path, source })
        };
        write("setgroups", "deny".into())?;
        write("uid_map", format!("0 {uid} 1\n"))?;
        write("gid_map", format!("0 {gid} 1\n"))?;
        let open = |name: &str| {
            let path = format!("/proc/{pid}/ns/{name}");
            File::open(&path)
                .map(OwnedFd::from)
                .map_err(|source| NamespaceError::Open { path, source })
        };
        Ok(SandboxNamespaces {
            user: open("user")?,
            net: open("net")?,
            ipc: open("ipc")?,
            uts: open("uts")?,
            host_uid: uid,
            host_gid: gid,
        })
    }

    /// The fds to hand to [`enter_in_child`].
    pub fn fds(&self) -> NsFds {
        NsFds {
            user: self.user.as_raw_fd(),
            net: self.net.as_raw_fd(),
            ipc: self.ipc.as_raw_fd(),
            uts: self.uts.as_raw_fd(),
        }
    }
}

/// Joins the sandbox's shared namespaces and clones the calling process into
/// a new mount and pid namespace. Returns `Ok(())` in the new process, which
/// is pid 1 of its pid namespace and a child of the caller's parent; the
/// calling process itself writes an 8-byte record (the new pid, then 0, as
/// native-endian i32s) to `pid_pipe` and `_exit`s(0) there, or returns the
/// error if a step failed (nothing was cloned then; pass it to
/// [`report_failure`]).
///
/// # Safety
///
/// Call only in a single-threaded process, normally a child right after
/// fork and before exec: it makes only async-signal-safe system calls, and
/// the clone runs without glibc's fork handlers. `ns` must hold open
/// namespace fds and `pid_pipe` a writable fd.
pub unsafe fn enter_in_child(ns: &NsFds, pid_pipe: RawFd) -> Result<(), EnterError> {
    // SAFETY: setns, syscall(clone), write and _exit are async-signal-safe
    // system calls; the caller guarantees we are single-threaded (setns into
    // a user namespace requires it) and that the fds are valid.
    unsafe {
        // The user namespace first: it gives us CAP_SYS_ADMIN over the others.
        let steps = [
            (ns.user, libc::CLONE_NEWUSER, ENTER_STEPS[1]),
            (ns.net, libc::CLONE_NEWNET, ENTER_STEPS[2]),
            (ns.ipc, libc::CLONE_NEWIPC, ENTER_STEPS[3]),
            (ns.uts, libc::CLONE_NEWUTS, ENTER_STEPS[4]),
        ];
        for (fd, kind, step) in steps {
            if libc::setns(fd, kind) != 0 {
                return Err(EnterError::last(step));
            }
        }
        let flags = (PER_PROCESS_FLAGS | libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
        // A raw clone with no stack behaves like fork on every architecture
        // (the other arguments are 0, so their order does not matter).
        let pid = libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize);
        if pid < 0 {
            return Err(EnterError::last(ENTER_STEPS[5]));
        }
        if pid == 0 {
            return Ok(());
        }
        let mut record = [0u8; 8];
        record[..4].copy_from_slice(&(pid as libc::pid_t).to_ne_bytes());
        let written = libc::write(pid_pipe, record.as_ptr().cast(), record.len());
        libc::_exit(if written == record.len() as isize {
            0
        } else {
            1
        })
    }
}

/// The supervisor's half of [`enter_in_child`]: reads the jailed pid from
/// the pipe and reaps `forked` (the process that called `enter_in_child`).
/// Close every copy of the pipe's write end in the supervisor first, so a
/// child that failed gives EOF instead of a hang.
pub fn collect_child(
    forked: libc::pid_t,
    pid_pipe: OwnedFd,
) -> Result<libc::pid_t, NamespaceError> {
    let mut buf = [0u8; 8];
    let read = File::from(pid_pipe).read_exact(&mut buf);
    let mut status = 0;
    // SAFETY: `forked` is our child; waitpid writes only to `status`.
    while unsafe { libc::waitpid(forked, &mut status, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    if read.is_err() {
        return Err(NamespaceError::ChildFailed(describe_status(status)));
    }
    let pid = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if pid > 0 {
        return Ok(pid);
    }
    let step = usize::try_from(-(pid + 1))
        .ok()
        .and_then(|i| ENTER_STEPS.get(i))
        .copied()
        .unwrap_or("an unknown step");
    Err(NamespaceError::Enter(EnterError { step, errno }))
}

/// Writes `err` to `pid_pipe` as the record [`collect_child`] turns back
/// into [`NamespaceError::Enter`]. Async-signal-safe (one write(2)).
pub fn report_failure(pid_pipe: RawFd, err: EnterError) {
    let record = err.record();
    // SAFETY: writes 8 bytes from a local buffer to an fd; a failed write
    // leaves the supervisor with EOF, which it reports too.
    unsafe { libc::write(pid_pipe, record.as_ptr().cast(), record.len()) };
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// The current hostname, for checks.
pub fn hostname() -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Whether the interface `name` in the caller's network namespace is up
/// (SIOCGIFFLAGS), or the errno the kernel gave.
pub fn interface_is_up(name: &str) -> std::io::Result<bool> {
    let cname = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let bytes = cname.as_bytes_with_nul();
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if bytes.len() > req.ifr_name.len() {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: socket has no memory-safety preconditions.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socket succeeded, so `sock` is a new fd we own.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: SIOCGIFFLAGS reads and writes one `ifreq`, which `req` is.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(flags as libc::c_int & libc::IFF_UP != 0)
}
