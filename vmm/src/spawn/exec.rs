//! The forked child's side of `spawn`, between fork and exec: only
//! async-signal-safe calls on memory allocated before the fork.

use std::os::fd::RawFd;

use jail::cgroup::CgroupJoin;
use jail::namespaces::NsFds;

use super::CONTROL_FD;

/// Temporaries used while fds are moved into place sit at or above this.
const SCRATCH_FD: RawFd = 64;

/// What the forked child needs to enter its sandbox.
pub(super) struct JailFds {
    pub ns: NsFds,
    pub cgroup: CgroupJoin,
    /// Where the jailed pid (or the failed step) is reported.
    pub pid_pipe: RawFd,
}

/// Everything `exec_child` uses, allocated before fork.
pub(super) struct Plan<'a> {
    pub exe: RawFd,
    /// What goes to fds 0, 1 and 2 (/dev/null, or the caller's stdio
    /// handles); None leaves the fd as inherited.
    pub stdio: [Option<RawFd>; 3],
    /// Moved to fds 3, 4, ...
    pub sources: &'a [RawFd],
    pub scratch: &'a mut [RawFd],
    /// NULL-terminated.
    pub argv: &'a [*const libc::c_char],
    /// NULL-terminated.
    pub envp: &'a [*const libc::c_char],
    pub jail: Option<JailFds>,
}

/// Enters the sandbox (if jailed), moves `sources` to fds 3, 4, ...,
/// closes everything else and execs.
///
/// # Safety
///
/// Must only be called in a child right after fork: it calls only
/// async-signal-safe functions, and `argv`/`envp` must be NULL-terminated
/// arrays of valid C strings.
pub(super) unsafe fn exec_child(plan: Plan) -> ! {
    // SAFETY: the caller guarantees we are a forked child; every call here is
    // async-signal-safe and only touches memory allocated before fork.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            libc::_exit(127);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if let Some(jail) = &plan.jail {
            // The cgroup first, with the supervisor's credentials; then the
            // namespaces. Only the clone comes back from enter_in_child.
            let entered = jail::cgroup::join_self(&jail.cgroup)
                .and_then(|()| jail::namespaces::enter_in_child(&jail.ns, jail.pid_pipe));
            if let Err(e) = entered {
                jail::namespaces::report_failure(jail.pid_pipe, e);
                libc::_exit(127);
            }
            // Not inherited across clone. Parent death before this point
            // is caught after exec by the death pipe.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                libc::_exit(127);
            }
        }
        move_fds_and_exec(plan)
    }
}

/// # Safety
///
/// As `exec_child`.
unsafe fn move_fds_and_exec(plan: Plan) -> ! {
    // SAFETY: see `exec_child`.
    unsafe {
        let Plan {
            exe,
            stdio,
            sources,
            scratch,
            argv,
            envp,
            ..
        } = plan;
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
        // Stdio sources out of the way too (one may sit on 0-2), then into
        // place, before the other targets are written.
        let mut stdio_tmp: [RawFd; 3] = [-1; 3];
        for (tmp, fd) in stdio_tmp.iter_mut().zip(stdio) {
            if let Some(fd) = fd {
                *tmp = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, SCRATCH_FD);
                if *tmp < 0 {
                    libc::_exit(127);
                }
            }
        }
        for (target, &tmp) in stdio_tmp.iter().enumerate() {
            if tmp >= 0 && libc::dup2(tmp, target as RawFd) < 0 {
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
