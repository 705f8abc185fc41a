//! Helpers for the namespace, root and cgroup tests: running a function as
//! a jailed process of a sandbox, private namespaces for a layer tested
//! alone, and timing. Used from inside a `common::run_in_child` case, so the
//! process is single-threaded and may allocate after fork.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use jail::namespaces::{collect_child, enter_in_child, SandboxNamespaces};

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid for two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded; both fds are new and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A process running in a sandbox's namespaces, as the spawn helper would
/// start it (minus the exec).
pub struct Jailed {
    /// Its pid in the test's pid namespace.
    pub pid: libc::pid_t,
    report: File,
}

impl Jailed {
    /// Waits for it and returns its report (`Ok` if it exited 0).
    pub fn wait(mut self) -> Result<(), String> {
        let mut msg = String::new();
        let _ = self.report.read_to_string(&mut msg);
        let mut status = 0;
        // SAFETY: the jailed process is our child (CLONE_PARENT).
        if unsafe { libc::waitpid(self.pid, &mut status, 0) } != self.pid {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
            (true, 0) => Ok(()),
            (true, code) => Err(format!("jailed process exit {code}: {msg}")),
            _ => Err(format!(
                "jailed process signal {}: {msg}",
                libc::WTERMSIG(status)
            )),
        }
    }
}

/// Starts `body` in a new process in `ns`'s shared namespaces and its own
/// mount and pid namespaces: fork, [`enter_in_child`] in the child,
/// [`collect_child`] here.
pub fn spawn_in(
    ns: &SandboxNamespaces,
    body: impl FnOnce() -> Result<(), String>,
) -> Result<Jailed, String> {
    let (pid_r, pid_w) = pipe();
    let (report_r, report_w) = pipe();
    let fds = ns.fds();
    // SAFETY: the test process is single-threaded.
    let forked = unsafe { libc::fork() };
    if forked < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if forked == 0 {
        drop(pid_r);
        drop(report_r);
        // SAFETY: a single-threaded child after fork; the fds are open.
        let code = match unsafe { enter_in_child(&fds, pid_w.as_raw_fd()) } {
            Err(e) => {
                let _ = File::from(report_w).write_all(e.to_string().as_bytes());
                2
            }
            Ok(()) => match body() {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = File::from(report_w).write_all(msg.as_bytes());
                    1
                }
            },
        };
        // SAFETY: ends the child without running the parent's cleanup.
        unsafe { libc::_exit(code) }
    }
    drop(pid_w);
    drop(report_w);
    let pid = collect_child(forked, pid_r).map_err(|e| e.to_string())?;
    Ok(Jailed {
        pid,
        report: File::from(report_r),
    })
}

/// Puts the calling process into a new user and mount namespace on its own
/// (unprivileged-style: one-id maps written by itself), for testing the
/// empty root with the sandbox namespaces off.
pub fn own_user_and_mount_ns() -> Result<(), String> {
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: unshare has no memory-safety preconditions; single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
        return Err(format!("unshare: {}", std::io::Error::last_os_error()));
    }
    for (file, text) in [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("0 {uid} 1")),
        ("gid_map", format!("0 {gid} 1")),
    ] {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

/// Drops the calling process to an unprivileged uid and gid (no groups, no
/// capabilities), as a user who can only open /dev/kvm would run cordon.
/// A process that is not root already is such a user (the CI's stage that
/// reruns these tests as one) and stays as it is.
pub fn become_unprivileged(id: u32) -> Result<(), String> {
    // SAFETY: plain system calls; single-threaded, so they cover the process.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(());
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(id, id, id) != 0
            || libc::setresuid(id, id, id) != 0
        {
            return Err(format!(
                "dropping to {id}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Changing uids made the process non-dumpable, which makes its
        // /proc files root's; a user who logged in as `id` would be dumpable.
        libc::prctl(libc::PR_SET_DUMPABLE, 1);
    }
    Ok(())
}

/// Runs `f` `runs` times and returns the mean and the minimum.
pub fn time(runs: u32, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut total = Duration::ZERO;
    let mut min = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        f();
        let t = start.elapsed();
        total += t;
        min = min.min(t);
    }
    (total / runs, min)
}

/// Prints a cost line (stderr: unbuffered, so it survives `_exit`).
pub fn report_cost(what: &str, (mean, min): (Duration, Duration), runs: u32) {
    eprintln!(
        "cost: {what}: mean {} us, min {} us over {runs} runs",
        mean.as_micros(),
        min.as_micros()
    );
}

/// An errno check for a raw libc return value.
pub fn expect_ret_errno(what: &str, ret: libc::c_long, expected: i32) -> Result<(), String> {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if ret == -1 && errno == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: returned {ret} (errno {errno}), expected {}",
            std::io::Error::from_raw_os_error(expected)
        ))
    }
}
