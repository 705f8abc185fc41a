//! Fd hygiene and rlimits, each in a forked child with no other jail layer.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};

use common::{expect_errno, Child};
use jail::fds::{close_all_except, close_all_except_via_proc, FdsError};
use jail::rlimits::{apply, Limits};

/// The open fds, from /proc/self/fd, without the listing's own fd.
fn open_fds() -> Result<BTreeSet<RawFd>, String> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|e| format!("/proc/self/fd: {e}"))?;
    let mut fds = BTreeSet::new();
    for entry in dir {
        let entry = entry.map_err(|e| format!("/proc/self/fd: {e}"))?;
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let own = target.starts_with("/proc") && target.ends_with("fd");
        if !own {
            let name = entry.file_name();
            let fd = name.to_str().and_then(|s| s.parse().ok());
            fds.insert(fd.ok_or(format!("bad entry {name:?}"))?);
        }
    }
    Ok(fds)
}

/// Puts /dev/null on each of `fds` (leaked on purpose: the case closes them).
fn occupy(fds: &[RawFd]) -> Result<(), String> {
    let null = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    for &fd in fds {
        // SAFETY: dup2 onto a number nothing in this child owns.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } != fd {
            return Err(format!("dup2 {fd}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn check_only(expected: &[RawFd]) -> Result<(), String> {
    let found = open_fds()?;
    let expected: BTreeSet<RawFd> = expected.iter().copied().collect();
    if found != expected {
        return Err(format!("open fds {found:?}, expected {expected:?}"));
    }
    Ok(())
}

/// Gaps below, between and above the kept fds are closed; stdio too, since
/// it is not listed.
fn close_range_keeps_only_the_list(child: &Child) -> Result<(), String> {
    occupy(&[10, 20, 30, 700])?;
    let keep = [700, child.report_fd, 20, 20];
    close_all_except(&keep).map_err(|e| e.to_string())?;
    check_only(&[child.report_fd, 20, 700])
}

fn proc_fallback_keeps_only_the_list(child: &Child) -> Result<(), String> {
    occupy(&[10, 20, 30, 700])?;
    close_all_except_via_proc(&[700, child.report_fd, 20]).map_err(|e| e.to_string())?;
    check_only(&[child.report_fd, 20, 700])
}

fn stdio_survives_only_when_listed(child: &Child) -> Result<(), String> {
    occupy(&[10])?;
    close_all_except(&[0, 1, 2, child.report_fd]).map_err(|e| e.to_string())?;
    check_only(&[0, 1, 2, child.report_fd])
}

fn negative_fd_is_an_error(_: &Child) -> Result<(), String> {
    match close_all_except(&[0, -1]) {
        Err(FdsError::NegativeFd(-1)) => Ok(()),
        other => Err(format!("expected NegativeFd(-1), got {other:?}")),
    }
}

fn getrlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes.
    unsafe { libc::getrlimit(resource, &mut limit) };
    (limit.rlim_cur, limit.rlim_max)
}

/// After apply: opening fd number 16 fails with EMFILE; core dumps and the
/// other fixed limits are 0 soft and hard.
fn rlimits_bound_fds_and_forbid_core_dumps(_: &Child) -> Result<(), String> {
    apply(&Limits { max_open_files: 16 }).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let err = loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) => break e,
        }
    };
    expect_errno("open past RLIMIT_NOFILE", Err::<(), _>(err), libc::EMFILE)?;
    let highest = files.iter().map(|f| f.as_raw_fd()).max();
    if highest != Some(15) {
        return Err(format!("highest fd opened {highest:?}, expected 15"));
    }
    for (name, resource) in [
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ] {
        if getrlimit(resource) != (0, 0) {
            return Err(format!("{name} is {:?}", getrlimit(resource)));
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::run(&[
        (
            "close_range_keeps_only_the_list",
            close_range_keeps_only_the_list,
        ),
        (
            "proc_fallback_keeps_only_the_list",
            proc_fallback_keeps_only_the_list,
        ),
        (
            "stdio_survives_only_when_listed",
            stdio_survives_only_when_listed,
        ),
        ("negative_fd_is_an_error", negative_fd_is_an_error),
        (
            "rlimits_bound_fds_and_forbid_core_dumps",
            rlimits_bound_fds_and_forbid_core_dumps,
        ),
    ])
}
