//! The one spawn helper: every child process cordon starts goes through
//! `spawn`, so no child can skip the jail.
//!
//! The child is forked and re-executes the supervisor's own executable from
//! an fd (execveat with AT_EMPTY_PATH), so no path is needed in the child.
//! Jailed (the default), the forked process first joins the sandbox's
//! cgroup, then its shared user, net, ipc and uts namespaces, and clones
//! itself into a new mount and pid namespace (see `jail::namespaces`); that
//! clone is the child, pid 1 of its pid namespace, and it is what execs.
//! After exec the child's main applies the rest of the jail (`child`).
//!
//! The child inherits exactly: stderr, stdin and stdout where its role
//! needs them (`Role::stdio`, else /dev/null), the control socket (fd 3),
//! the read end of the death pipe (fd 4), then the caller's keep list at
//! fds 5, 6, ...
//! Everything else is closed, the signal mask is cleared and the
//! environment is empty. Parent death reaches the child as EOF on the death
//! pipe (its write end lives only in the supervisor), backed by
//! PR_SET_PDEATHSIG.

pub mod child;
mod exec;
mod sandbox;

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use protocol::device::DeviceKind;

pub use child::ChildMode;
pub use sandbox::{JailSetupError, SandboxJail};

/// Where a child finds its control socket.
pub const CONTROL_FD: RawFd = 3;
/// Where a child finds the read end of its death pipe.
pub const DEATH_PIPE_FD: RawFd = 4;
/// Where a child finds the first fd of its keep list.
pub const FIRST_KEPT_FD: RawFd = 5;
/// Most fds a keep list may hold.
pub const MAX_KEPT: usize = 32;

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

    /// Which of stdin and stdout the process gets from cordon; the others
    /// are /dev/null. stderr is everyone's (logs). The vm process writes the
    /// guest's debug console to stdout; only the console device reads stdin.
    pub const fn stdio(self) -> (bool, bool) {
        match self {
            Role::Vm => (false, true),
            Role::Device(DeviceKind::Console) => (true, true),
            Role::Device(_) => (false, false),
        }
    }

    /// The process's seccomp policy (the unikernel one for the vm: the only
    /// guest kind so far).
    pub const fn seccomp(self) -> jail::seccomp::Role {
        match self {
            Role::Vm => jail::seccomp::Role::VmUnikernel,
            Role::Device(DeviceKind::Console) => jail::seccomp::Role::DeviceConsole,
            Role::Device(DeviceKind::Block) => jail::seccomp::Role::DeviceBlock,
            Role::Device(DeviceKind::Rng) => jail::seccomp::Role::DeviceRng,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot open cordon's own executable")]
    OpenSelf(#[source] std::io::Error),
    #[error("cannot create the control socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot create a pipe")]
    Pipe(#[source] std::io::Error),
    #[error("too many fds to hand over ({0})")]
    TooManyFds(usize),
    #[error("fork failed")]
    Fork(#[source] std::io::Error),
    #[error("cannot open /dev/null for a child's stdio")]
    DevNull(#[source] std::io::Error),
    #[error("the child could not enter its jail")]
    Enter(#[source] jail::namespaces::NamespaceError),
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
    jail::fds::pipe().map_err(SpawnError::Pipe)
}

fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: `pid` is our child; kill and waitpid on it are sound.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Starts `role` from `exe` with `keep` at fds 5, 6, ..., in `jail`'s
/// sandbox (or unjailed for `--no-jail`, when `jail` is None). The stdio
/// the role has (`Role::stdio`) is `stdio` (stdin, stdout, stderr), or the
/// caller's own; the rest is /dev/null.
pub fn spawn(
    exe: &File,
    role: Role,
    keep: &[BorrowedFd],
    jail: Option<&SandboxJail>,
    stdio: Option<[RawFd; 3]>,
) -> Result<Child, SpawnError> {
    if keep.len() > MAX_KEPT {
        return Err(SpawnError::TooManyFds(keep.len()));
    }
    let (control, child_control) = UnixStream::pair().map_err(SpawnError::Socket)?;
    let (death_read, death_write) = pipe()?;
    let (pid_read, pid_write) = pipe()?;
    let mut sources = vec![child_control.as_raw_fd(), death_read.as_raw_fd()];
    sources.extend(keep.iter().map(|fd| fd.as_raw_fd()));
    // Everything the child touches is allocated before fork.
    let mode = jail.map_or(ChildMode::Unjailed, |j| ChildMode::Jailed(j.seccomp_mode()));
    let args = [
        role.arg().to_string(),
        keep.len().to_string(),
        mode.arg().into(),
    ];
    let args: Vec<CString> = args
        .into_iter()
        .map(|a| CString::new(a).unwrap_or_default())
        .collect();
    let mut argv = vec![c"cordon".as_ptr()];
    argv.extend(args.iter().map(|a| a.as_ptr()));
    argv.push(std::ptr::null());
    let envp = [std::ptr::null::<libc::c_char>()];
    let (stdin, stdout) = role.stdio();
    let wanted = [stdin, stdout, true];
    let null = if stdin && stdout {
        None
    } else {
        Some(
            File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(SpawnError::DevNull)?,
        )
    };
    let null_fd = null.as_ref().map(|f| f.as_raw_fd());
    let plan = exec::Plan {
        stdio: [0, 1, 2].map(|i| match wanted[i] {
            true => stdio.map(|fds| fds[i]),
            false => null_fd,
        }),
        exe: exe.as_raw_fd(),
        sources: &sources,
        scratch: &mut [0; MAX_KEPT + 2],
        argv: &argv,
        envp: &envp,
        jail: jail.map(|j| exec::JailFds {
            ns: j.namespaces(),
            cgroup: j.cgroup_join(),
            pid_pipe: pid_write.as_raw_fd(),
        }),
    };

    // SAFETY: fork has no memory-safety preconditions; the child branch below
    // only makes async-signal-safe calls on memory allocated before the fork.
    let forked = unsafe { libc::fork() };
    if forked < 0 {
        return Err(SpawnError::Fork(std::io::Error::last_os_error()));
    }
    if forked == 0 {
        // SAFETY: we are the freshly forked child; see `exec::exec_child`.
        unsafe { exec::exec_child(plan) }
    }
    drop(pid_write);
    let pid = if jail.is_some() {
        jail::namespaces::collect_child(forked, pid_read).map_err(SpawnError::Enter)?
    } else {
        forked
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        let err = std::io::Error::last_os_error();
        kill_and_reap(pid);
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
