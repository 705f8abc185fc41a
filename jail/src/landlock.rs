//! Landlock with hard requirements.
//!
//! The ruleset handles every filesystem right of the kernel's Landlock ABI
//! (capped at the newest ABI the `landlock` crate knows), so anything not
//! granted to an explicit path is denied; on ABI >= 4 it handles TCP bind
//! and connect with no port allowed; on ABI >= 6 it scopes signals and
//! abstract unix sockets to the domain. Every request is a
//! `CompatLevel::HardRequirement` and the result must be `FullyEnforced`,
//! otherwise `restrict` fails: there is no best-effort downgrade.
//!
//! Fds opened before `restrict` keep working: Landlock checks paths at
//! open time. That is how a spawned process keeps /dev/kvm, its image and
//! its sockets while holding no path at all.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use landlock::{
    Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// What a path (and, for a directory, everything beneath it) may be used
/// for. Neither includes execute: nothing cordon jails runs a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read files; list directories.
    ReadOnly,
    /// Read, write and truncate files; for a directory also create, remove
    /// and rename beneath it.
    ReadWrite,
}

/// Why Landlock could not be applied as asked.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("kernel built without Landlock (CONFIG_SECURITY_LANDLOCK, Linux >= 5.13)")]
    NotImplemented,
    #[error("Landlock is built in but not enabled (add landlock to the lsm= boot parameter)")]
    NotEnabled,
    #[error("probing the Landlock ABI failed: {0}")]
    Probe(std::io::Error),
    #[error("cannot open {path} for a Landlock rule")]
    Path {
        path: PathBuf,
        source: landlock::PathFdError,
    },
    #[error("cannot stat {path} for a Landlock rule")]
    Stat {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Landlock ABI {abi} ruleset failed")]
    Ruleset {
        abi: ABI,
        source: landlock::RulesetError,
    },
    #[error("Landlock ABI {abi} ruleset is {status:?}, not fully enforced")]
    NotFullyEnforced { abi: ABI, status: RulesetStatus },
}

/// What `restrict` enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enforced {
    /// The Landlock ABI whose rights the ruleset handles.
    pub abi: ABI,
    /// TCP bind and connect are denied (ABI >= 4).
    pub tcp_denied: bool,
    /// Signals and abstract unix sockets are scoped to the domain (ABI >= 6).
    pub scoped: bool,
}

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

/// The kernel's Landlock ABI version, capped at the newest the crate knows
/// (the crate keeps its own probe private). An error names what is missing.
pub fn abi() -> Result<ABI, LandlockError> {
    let version = kernel_abi()?;
    Ok(ABI::from(i32::try_from(version).unwrap_or(i32::MAX)))
}

/// The kernel's own Landlock ABI version (1 or more), uncapped, for
/// reports; an error names what is missing.
pub fn kernel_abi() -> Result<u32, LandlockError> {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag,
    // landlock_create_ruleset only returns the ABI version.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version < 1 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOSYS) => LandlockError::NotImplemented,
            Some(libc::EOPNOTSUPP) => LandlockError::NotEnabled,
            _ => LandlockError::Probe(err),
        });
    }
    Ok(u32::try_from(version).unwrap_or(u32::MAX))
}

/// The rights `access` grants on a path, for a file or a directory.
fn rights(access: Access, abi: ABI, is_dir: bool) -> BitFlags<AccessFs> {
    let granted = match access {
        Access::ReadOnly => AccessFs::from_read(abi),
        Access::ReadWrite => AccessFs::from_all(abi),
    } & !AccessFs::Execute;
    if is_dir {
        granted
    } else {
        // Directory rights on a file are an error under HardRequirement.
        granted & AccessFs::from_file(abi)
    }
}

/// Whether the opened path is a directory (fstat on the O_PATH fd, so the
/// rule's rights match the very inode the rule is for).
fn is_dir(fd: &PathFd) -> std::io::Result<bool> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the call and `stat` is valid for writes.
    if unsafe { libc::fstat(fd.as_fd().as_raw_fd(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Restricts the calling thread (and its later children and threads) to
/// `paths` with their rights, no TCP bind or connect, and signals and
/// abstract unix sockets scoped to the domain, as far as the kernel's ABI
/// has each. Also sets no_new_privs (Landlock needs it without
/// CAP_SYS_ADMIN). An empty `paths` denies every filesystem access by path.
pub fn restrict(paths: &[(PathBuf, Access)]) -> Result<Enforced, LandlockError> {
    let abi = abi()?;
    let ruleset_err = |source| LandlockError::Ruleset { abi, source };
    let tcp_denied = abi >= ABI::V4;
    let scoped = abi >= ABI::V6;

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(ruleset_err)?;
    if tcp_denied {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(ruleset_err)?;
    }
    if scoped {
        ruleset = ruleset.scope(Scope::from_all(abi)).map_err(ruleset_err)?;
    }
    let mut created = ruleset.create().map_err(ruleset_err)?;
    for (path, access) in paths {
        let fd = PathFd::new(path).map_err(|source| LandlockError::Path {
            path: path.clone(),
            source,
        })?;
        let is_dir = is_dir(&fd).map_err(|source| LandlockError::Stat {
            path: path.clone(),
            source,
        })?;
        created = created
            .add_rule(PathBeneath::new(fd, rights(*access, abi, is_dir)))
            .map_err(ruleset_err)?;
    }
    let status = created.restrict_self().map_err(ruleset_err)?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(LandlockError::NotFullyEnforced {
            abi,
            status: status.ruleset,
        });
    }
    Ok(Enforced {
        abi,
        tcp_denied,
        scoped,
    })
}
