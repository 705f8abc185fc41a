//! no_new_privs and dropping every capability.
//!
//! Capabilities and no_new_privs are per thread (inherited by threads and
//! children created afterwards): call these while the process has a single
//! thread, as the first act of its main.
//!
//! The result is checked with syscalls (`capget`, `PR_CAPBSET_READ`,
//! `PR_CAP_AMBIENT_IS_SET`, `PR_GET_SECUREBITS`, `PR_GET_NO_NEW_PRIVS`), not
//! by parsing `/proc/self/status`: a jailed process has pivoted into an empty
//! root with no /proc. The tests read `/proc/self/status` as an independent
//! check of the same kernel state.

use std::io;

/// Why a privilege could not be dropped, or was found still held.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegesError {
    #[error("prctl(PR_SET_NO_NEW_PRIVS) failed (kernel >= 3.5 needed): {0}")]
    SetNoNewPrivs(io::Error),
    #[error("no_new_privs reads back as {0} after setting it")]
    NoNewPrivsNotSet(i32),
    #[error("setting securebits {bits:#x} failed (needs CAP_SETPCAP in the effective set)")]
    Securebits { bits: u32, source: io::Error },
    #[error("dropping capability {cap} from the bounding set failed (needs CAP_SETPCAP in the effective set)")]
    BoundingDrop { cap: u32, source: io::Error },
    #[error(
        "clearing the ambient set failed (kernel lacks ambient capabilities, Linux >= 4.3): {0}"
    )]
    AmbientClear(io::Error),
    #[error("capset to empty effective, permitted and inheritable sets failed: {0}")]
    Capset(io::Error),
    #[error("capget failed: {0}")]
    Capget(io::Error),
    #[error("prctl({what}) failed while checking the result")]
    Check {
        what: &'static str,
        source: io::Error,
    },
    #[error("capability set {set} still holds {mask:#x} after dropping everything")]
    StillHeld { set: &'static str, mask: u64 },
    #[error("securebits read back as {found:#x}, missing {missing:#x}")]
    SecurebitsNotSet { found: u32, missing: u32 },
}

/// Sets no_new_privs: execve can no longer grant privileges (setuid bits
/// and file capabilities are ignored), which Landlock and seccomp need
/// without CAP_SYS_ADMIN. Reads it back.
pub fn no_new_privs() -> Result<(), PrivilegesError> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(PrivilegesError::SetNoNewPrivs)?;
    let read = prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0).map_err(|source| PrivilegesError::Check {
        what: "PR_GET_NO_NEW_PRIVS",
        source,
    })?;
    if read != 1 {
        return Err(PrivilegesError::NoNewPrivsNotSet(read));
    }
    Ok(())
}

// Securebits from <linux/securebits.h>.
const SECBIT_NOROOT: u32 = 1 << 0;
const SECBIT_NOROOT_LOCKED: u32 = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: u32 = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: u32 = 1 << 7;

/// capabilities(7) "pure capability" mode, locked: uid 0 gains nothing at
/// execve, uid changes do not touch capability sets, keep-caps stays off,
/// and the ambient set can never be raised.
const SECUREBITS: u32 = SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
    | SECBIT_NO_CAP_AMBIENT_RAISE
    | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// prctl with integer arguments, returning its result or errno.
fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> io::Result<libc::c_int> {
    let zero: libc::c_ulong = 0;
    // SAFETY: every option used here takes integers only, no pointers.
    let ret = unsafe { libc::prctl(option, arg2, arg3, zero, zero) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The highest capability number the kernel knows, probed with
/// PR_CAPBSET_READ (EINVAL past the last one), since
/// /proc/sys/kernel/cap_last_cap is not there in an empty root.
fn last_cap() -> Result<u32, PrivilegesError> {
    let mut cap: u32 = 0;
    loop {
        match prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap + 1), 0) {
            Ok(_) => cap += 1,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(cap),
            Err(source) => {
                return Err(PrivilegesError::Check {
                    what: "PR_CAPBSET_READ",
                    source,
                })
            }
        }
    }
}

fn capget() -> Result<[CapData; 2], PrivilegesError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 capget writes two CapData structs, which `data`
    // holds; both pointers are valid for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if ret != 0 {
        return Err(PrivilegesError::Capget(io::Error::last_os_error()));
    }
    Ok(data)
}

/// Drops every capability from every set: locks the securebits above,
/// empties the bounding set (cap by cap) and the ambient set, then the
/// effective, permitted and inheritable sets with capset. Checks the result
/// afterwards and fails if anything is still held.
///
/// Changing securebits and the bounding set needs CAP_SETPCAP, so a
/// process without it (an unprivileged process outside a user namespace)
/// gets an error rather than a partly dropped state. Steps already done are
/// skipped, so calling it twice succeeds.
pub fn drop_all_capabilities() -> Result<(), PrivilegesError> {
    let secure = prctl(libc::PR_GET_SECUREBITS, 0, 0).map_err(|source| PrivilegesError::Check {
        what: "PR_GET_SECUREBITS",
        source,
    })? as u32;
    if secure & SECUREBITS != SECUREBITS {
        let bits = secure | SECUREBITS;
        prctl(libc::PR_SET_SECUREBITS, libc::c_ulong::from(bits), 0)
            .map_err(|source| PrivilegesError::Securebits { bits, source })?;
    }

    let last = last_cap()?;
    for cap in 0..=last {
        let held = prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0).map_err(|source| {
            PrivilegesError::Check {
                what: "PR_CAPBSET_READ",
                source,
            }
        })?;
        if held == 1 {
            prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0)
                .map_err(|source| PrivilegesError::BoundingDrop { cap, source })?;
        }
    }

    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map_err(PrivilegesError::AmbientClear)?;

    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let empty = [CapData::default(); 2];
    // SAFETY: version 3 capset reads two CapData structs from `empty`; both
    // pointers are valid for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, empty.as_ptr()) };
    if ret != 0 {
        return Err(PrivilegesError::Capset(io::Error::last_os_error()));
    }

    verify_dropped(last)
}

/// Checks that every capability set is empty and the securebits are set.
fn verify_dropped(last: u32) -> Result<(), PrivilegesError> {
    let data = capget()?;
    let mask = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | (u64::from(f(&data[1])) << 32);
    for (set, held) in [
        ("effective", mask(|d| d.effective)),
        ("permitted", mask(|d| d.permitted)),
        ("inheritable", mask(|d| d.inheritable)),
    ] {
        if held != 0 {
            return Err(PrivilegesError::StillHeld { set, mask: held });
        }
    }

    let mut bounding = 0u64;
    let mut ambient = 0u64;
    for cap in 0..=last {
        let cap_arg = libc::c_ulong::from(cap);
        let in_bounding =
            prctl(libc::PR_CAPBSET_READ, cap_arg, 0).map_err(|source| PrivilegesError::Check {
                what: "PR_CAPBSET_READ",
                source,
            })?;
        if in_bounding == 1 {
            bounding |= 1 << cap;
        }
        let is_set = libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong;
        let in_ambient = prctl(libc::PR_CAP_AMBIENT, is_set, cap_arg).map_err(|source| {
            PrivilegesError::Check {
                what: "PR_CAP_AMBIENT_IS_SET",
                source,
            }
        })?;
        if in_ambient == 1 {
            ambient |= 1 << cap;
        }
    }
    for (set, held) in [("bounding", bounding), ("ambient", ambient)] {
        if held != 0 {
            return Err(PrivilegesError::StillHeld { set, mask: held });
        }
    }

    let found = prctl(libc::PR_GET_SECUREBITS, 0, 0).map_err(|source| PrivilegesError::Check {
        what: "PR_GET_SECUREBITS",
        source,
    })? as u32;
    if found & SECUREBITS != SECUREBITS {
        return Err(PrivilegesError::SecurebitsNotSet {
            found,
            missing: SECUREBITS & !found,
        });
    }
    Ok(())
}
