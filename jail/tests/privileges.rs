//! no_new_privs and capability dropping, each in a forked child with no
//! other jail layer. The tests run as root, so the privileged operations
//! succeed before the drop and fail with EPERM only because of it.

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

/// After the drop /proc/self/status shows every set empty and NoNewPrivs 1;
/// chown to another uid and mounting a tmpfs fail with EPERM.
fn drop_empties_every_set_and_privileged_ops_fail(_: &Child) -> Result<(), String> {
    if status("CapEff")? == "0000000000000000" {
        return Err("test must start with capabilities (run as root)".into());
    }
    let dir = std::env::temp_dir().join(format!("jail-privileges-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join("file");
    std::fs::write(&file, b"x").map_err(|e| e.to_string())?;
    // Control: with capabilities, chown to another uid works.
    chown(&file, 12345).map_err(|e| format!("control chown: {e}"))?;

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
    expect_errno("chown of a file owned by another uid", chowned, libc::EPERM)?;
    expect_errno("mount of a tmpfs", mounted, libc::EPERM)
}

/// no_new_privs alone sets NoNewPrivs and leaves the capabilities alone.
fn no_new_privs_alone(_: &Child) -> Result<(), String> {
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
    drop_all_capabilities().map_err(|e| format!("first: {e}"))?;
    drop_all_capabilities().map_err(|e| format!("second: {e}"))
}

/// Without CAP_SETPCAP in the effective set the bounding set cannot be
/// emptied: the drop fails with EPERM naming what it needs, rather than
/// leaving the bounding set full.
fn drop_without_setpcap_fails_loudly(_: &Child) -> Result<(), String> {
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
