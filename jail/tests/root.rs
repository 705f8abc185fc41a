//! The empty root, with every other layer off: a process in its own user
//! and mount namespace (made here, not by `jail::namespaces`) enters the
//! empty root and no host path resolves.

mod common;
mod ns_common;

use std::os::unix::fs::MetadataExt;

use common::{expect_errno, Case, Child};
use jail::root::enter_empty_root;
use ns_common::own_user_and_mount_ns;

const TMPFS_MAGIC: i64 = 0x0102_1994;

fn host_paths_are_gone(_: &Child) -> Result<(), String> {
    own_user_and_mount_ns()?;
    enter_empty_root().map_err(|e| format!("{e}: {:?}", e.source))?;
    for path in [
        "/etc/passwd",
        "/proc/self/status",
        "/dev/kvm",
        "/tmp",
        "/sys",
    ] {
        expect_errno(path, std::fs::File::open(path), libc::ENOENT)?;
    }
    expect_errno(
        "open(..) of the old root",
        std::fs::File::open("/../etc/passwd"),
        libc::ENOENT,
    )?;
    let entries = std::fs::read_dir("/").map_err(|e| e.to_string())?.count();
    if entries != 0 {
        return Err(format!("/ has {entries} entries"));
    }
    expect_errno("create /x", std::fs::File::create("/x"), libc::EROFS)?;
    expect_errno("mkdir /x", std::fs::create_dir("/x"), libc::EROFS)?;
    // SAFETY: statfs fills a zeroed statfs struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    if unsafe { libc::statfs(c"/".as_ptr(), &mut st) } != 0 || st.f_type as i64 != TMPFS_MAGIC {
        return Err(format!("/ is not a tmpfs (f_type {:#x})", st.f_type));
    }
    // SAFETY: statvfs fills a zeroed statvfs struct.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    if unsafe { libc::statvfs(c"/".as_ptr(), &mut vfs) } != 0 {
        return Err(format!("statvfs: {}", std::io::Error::last_os_error()));
    }
    let flags = vfs.f_flag as libc::c_ulong;
    for (flag, name) in [
        (libc::ST_RDONLY, "ro"),
        (libc::ST_NOSUID, "nosuid"),
        (libc::ST_NODEV, "nodev"),
        (libc::ST_NOEXEC, "noexec"),
    ] {
        if flags & flag == 0 {
            return Err(format!("/ is mounted without {name}"));
        }
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    if cwd != std::path::Path::new("/") {
        return Err(format!("cwd is {cwd:?}"));
    }
    Ok(())
}

/// The old root is detached, not hidden. A mountinfo file lists the mounts
/// of its namespace reachable from the root its opener had at open time;
/// opened before pivot_root with the old root, it lists nothing afterwards:
/// no mount of the namespace is under the old root any more.
fn old_root_is_detached(_: &Child) -> Result<(), String> {
    own_user_and_mount_ns()?;
    let mountinfo =
        std::fs::File::open("/proc/thread-self/mountinfo").map_err(|e| e.to_string())?;
    enter_empty_root().map_err(|e| e.to_string())?;
    let text = std::io::read_to_string(mountinfo).map_err(|e| e.to_string())?;
    if !text.is_empty() {
        return Err(format!("mount table after pivot_root:\n{text}"));
    }
    Ok(())
}

/// Nothing leaks back: the host's mount table does not gain the tmpfs and
/// the directory it was mounted on is unchanged.
fn host_is_untouched(_: &Child) -> Result<(), String> {
    let before = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let tmp_ino = std::fs::metadata("/tmp").map(|m| m.ino()).ok();
    common::run_in_child(|_| {
        own_user_and_mount_ns()?;
        enter_empty_root().map_err(|e| e.to_string())
    })?;
    let after = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    if before != after || std::fs::metadata("/tmp").map(|m| m.ino()).ok() != tmp_ino {
        return Err("the host mount table changed".into());
    }
    std::fs::File::open("/etc/passwd").map_err(|e| format!("host /etc/passwd: {e}"))?;
    Ok(())
}

/// As an unprivileged uid (item 6): the same steps work with a one-id map.
fn unprivileged(_: &Child) -> Result<(), String> {
    ns_common::become_unprivileged(65534)?;
    own_user_and_mount_ns()?;
    enter_empty_root().map_err(|e| e.to_string())?;
    expect_errno(
        "/etc/passwd",
        std::fs::File::open("/etc/passwd"),
        libc::ENOENT,
    )
}

/// Cost of enter_empty_root alone, timed inside 100 fresh processes.
fn cost(_: &Child) -> Result<(), String> {
    const RUNS: u32 = 100;
    let mut total = std::time::Duration::ZERO;
    let mut min = std::time::Duration::MAX;
    for _ in 0..RUNS {
        let (r, w) = std::io::pipe().map_err(|e| e.to_string())?;
        // SAFETY: single-threaded test process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = own_user_and_mount_ns().is_ok();
            let start = std::time::Instant::now();
            let ok = ok && enter_empty_root().is_ok();
            let ns = start.elapsed().as_nanos() as u64;
            let mut w = w;
            let _ = std::io::Write::write_all(&mut w, &ns.to_ne_bytes());
            // SAFETY: ends the child.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        drop(w);
        let mut buf = [0u8; 8];
        std::io::Read::read_exact(&mut &r, &mut buf).map_err(|e| e.to_string())?;
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if status != 0 {
            return Err("enter_empty_root failed in a timing run".into());
        }
        let t = std::time::Duration::from_nanos(u64::from_ne_bytes(buf));
        total += t;
        min = min.min(t);
    }
    ns_common::report_cost("enter_empty_root", (total / RUNS, min), RUNS);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cases: &[Case] = &[
        ("host_paths_are_gone", host_paths_are_gone),
        ("old_root_is_detached", old_root_is_detached),
        ("host_is_untouched", host_is_untouched),
        ("unprivileged", unprivileged),
        ("cost", cost),
    ];
    common::run(cases)
}
