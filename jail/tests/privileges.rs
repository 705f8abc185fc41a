//! no_new_privs and capability dropping, each in a forked child with no
//! other jail layer. Each child first gets every capability (as root, or
//! as root of a new user namespace when run unprivileged, as cordon's
//! children are) and a private mount namespace, so the privileged
//! operations succeed before the drop and fail with EPERM only because of
//! it.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{expect_errno, Child};
use jail::privileges::{drop_all_capabilities, no_new_privs, PrivilegesError};

/// The value of `field` in /proc/self/status.
fn status(field: &str) -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .ok_or(format!("no {field} in /proc/self/status"))
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    let path = cstring(path);
    // SAFETY: `path` is a valid C string for the call.
    if unsafe { libc::chown(path.as_ptr(), uid, uid) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn mount_tmpfs(target: &Path) -> std::io::Result<()> {
    let target = cstring(target);
    let fstype = c"tmpfs";
    // SAFETY: all strings are valid C strings; data is null.
    let ret = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn write_proc(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

/// Gives the child every capability and a private mount namespace: as
/// host root, a new mount namespace; otherwise a new user namespace too,
/// with the caller's uid and gid mapped to 0. Returns whether the process
/// is root of the initial user namespace (chown to an unmapped uid is only
/// meaningful there).
fn with_capabilities() -> Result<bool, String> {
    // SAFETY: getuid and getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let host_root = uid == 0;
    let flags = if host_root {
        libc::CLONE_NEWNS
    } else {
        libc::CLONE_NEWNS | libc::CLONE_NEWUSER
    };
    // SAFETY: unshare takes flags only; the process is single-threaded.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(format!("unshare: {}", std::io::Error::last_os_error()));
    }
    if !host_root {
        write_proc("/proc/self/setgroups", "deny")?;
        write_proc("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_proc("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    // Mounts made from here on must not propagate to the host.
    // SAFETY: the path is a valid C string; the others may be null.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(format!(
            "make / private: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(host_root)
}

fn umount(target: &Path) -> Result<(), String> {
    let path = cstring(target);
    // SAFETY: `path` is a valid C string.
    if unsafe { libc::umount(path.as_ptr()) } != 0 {
        return Err(format!("umount: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// After the drop /proc/self/status shows every set empty and NoNewPrivs 1;
/// mounting a tmpfs fails with EPERM, and (as host root) so does chown to
/// another uid.
fn drop_empties_every_set_and_privileged_ops_fail(_: &Child) -> Result<(), String> {
    let host_root = with_capabilities()?;
    let dir = std::env::temp_dir().join(format!("jail-privileges-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join("file");
    std::fs::write(&file, b"x").map_err(|e| e.to_string())?;
    // Controls: with capabilities, both operations work.
    if host_root {
        chown(&file, 12345).map_err(|e| format!("control chown: {e}"))?;
    }
    mount_tmpfs(&dir).map_err(|e| format!("control mount: {e}"))?;
    umount(&dir)?;

    no_new_privs().map_err(|e| e.to_string())?;
    drop_all_capabilities().map_err(|e| e.to_string())?;

    for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let value = status(field)?;
        if value != "0000000000000000" {
            return Err(format!("{field} is {value} after the drop"));
        }
    }
    if status("NoNewPrivs")? != "1" {
        return Err(format!("NoNewPrivs is {}", status("NoNewPrivs")?));
    }
    let chowned = chown(&file, 54321);
    let mounted = mount_tmpfs(&dir);
    // Uid 0 still owns the directory, so it can clean up without privilege.
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&dir);
    if host_root {
        expect_errno("chown of a file owned by another uid", chowned, libc::EPERM)?;
    }
    expect_errno("mount of a tmpfs", mounted, libc::EPERM)
}

/// no_new_privs alone sets NoNewPrivs and leaves the capabilities alone.
fn no_new_privs_alone(_: &Child) -> Result<(), String> {
    with_capabilities()?;
    if status("NoNewPrivs")? != "0" {
        return Err("NoNewPrivs already set before the call".into());
    }
    no_new_privs().map_err(|e| e.to_string())?;
    if status("NoNewPrivs")? != "1" {
        return Err(format!("NoNewPrivs is {}", status("NoNewPrivs")?));
    }
    if status("CapEff")? == "0000000000000000" {
        return Err("no_new_privs dropped capabilities".into());
    }
    Ok(())
}

/// A second drop finds nothing left to do and succeeds.
fn drop_twice_succeeds(_: &Child) -> Result<(), String> {
    with_capabilities()?;
    drop_all_capabilities().map_err(|e| format!("first: {e}"))?;
    drop_all_capabilities().map_err(|e| format!("second: {e}"))
}

/// Without CAP_SETPCAP in the effective set the bounding set cannot be
/// emptied: the drop fails with EPERM naming what it needs, rather than
/// leaving the bounding set full.
fn drop_without_setpcap_fails_loudly(_: &Child) -> Result<(), String> {
    with_capabilities()?;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let full = Data {
        effective: 0,
        permitted: u32::MAX,
        inheritable: 0,
    };
    let mut data = [full; 2];
    // SAFETY: version 3 capget fills two Data structs.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    for d in &mut data {
        d.effective = 0;
    }
    // SAFETY: version 3 capset reads two Data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    match drop_all_capabilities() {
        Err(PrivilegesError::Securebits { source, .. })
            if source.raw_os_error() == Some(libc::EPERM) =>
        {
            Ok(())
        }
        other => Err(format!("expected Securebits EPERM, got {other:?}")),
    }
}

fn main() -> std::process::ExitCode {
    common::run(&[
        (
            "drop_empties_every_set_and_privileged_ops_fail",
            drop_empties_every_set_and_privileged_ops_fail,
        ),
        ("no_new_privs_alone", no_new_privs_alone),
        ("drop_twice_succeeds", drop_twice_succeeds),
        (
            "drop_without_setpcap_fails_loudly",
            drop_without_setpcap_fails_loudly,
        ),
    ])
}
