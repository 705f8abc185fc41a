//! Runs each jail test case in a forked child, so one case's walls never
//! reach the test process or another case. The test binaries use
//! `harness = false`: the process is single-threaded when it forks, as the
//! per-thread layers (capabilities, Landlock) and fork itself require.
//!
//! A case is a closure returning `Result<(), String>`; the child writes an
//! error down a pipe (its write end is `Child::report_fd`, which a case that
//! closes fds must keep) and exits 1. The parent prints each case's outcome
//! and `run` returns failure if any failed.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::process::ExitCode;

/// What a case gets from the harness.
pub struct Child {
    /// The write end of the report pipe.
    pub report_fd: RawFd,
}

/// A named case.
pub type Case = (&'static str, fn(&Child) -> Result<(), String>);

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Checks that `result` is an error with `expected` errno.
pub fn expect_errno<T: std::fmt::Debug>(
    what: &str,
    result: std::io::Result<T>,
    expected: i32,
) -> Result<(), String> {
    match result {
        Ok(v) => Err(format!(
            "{what}: succeeded ({v:?}), expected {}",
            std::io::Error::from_raw_os_error(expected)
        )),
        Err(e) if e.raw_os_error() == Some(expected) => Ok(()),
        Err(e) => Err(format!(
            "{what}: failed with {e}, expected {}",
            std::io::Error::from_raw_os_error(expected)
        )),
    }
}

/// Forks, runs `case` in the child, and returns `Ok` if the child exited 0,
/// else the child's report and how it ended.
pub fn run_in_child(case: fn(&Child) -> Result<(), String>) -> Result<(), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid for two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: the test process is single-threaded (harness = false), so the
    // child may run ordinary Rust code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: the read end is ours and not used again in the child.
        unsafe { libc::close(read_fd) };
        let code = match case(&Child {
            report_fd: write_fd,
        }) {
            Ok(()) => 0,
            Err(msg) => {
                // SAFETY: the write end is ours; ManuallyDrop-free because
                // the child exits right after.
                let mut report = unsafe { File::from_raw_fd(write_fd) };
                let _ = report.write_all(msg.as_bytes());
                1
            }
        };
        // SAFETY: _exit skips the parent's atexit handlers and buffers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the write end belongs to the child now.
    unsafe { libc::close(write_fd) };
    // SAFETY: the read end is ours, owned by `report` from here on.
    let mut report = unsafe { File::from_raw_fd(read_fd) };
    let mut msg = String::new();
    let _ = report.read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: `status` is valid for writes; `pid` is our child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(format!("exit {}: {msg}", libc::WEXITSTATUS(status)))
    } else {
        Err(format!("signal {}: {msg}", libc::WTERMSIG(status)))
    }
}

/// Runs every case in its own child, prints a libtest-like line per case,
/// and returns failure if any failed. A first argument that is not a flag
/// filters cases by substring, as libtest does.
pub fn run(cases: &[Case]) -> ExitCode {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = 0;
    let mut ran = 0;
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        match run_in_child(*case) {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED\n    {e}");
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        ran - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
