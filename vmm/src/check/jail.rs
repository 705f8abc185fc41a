//! The jail half of `cordon check`: what the kernel offers the jail
//! (Landlock, seccomp, user namespaces, cgroups). Probes only: nothing here
//! forks, creates a namespace or installs a filter.

use std::fmt;
use std::io;
use std::path::Path;

pub use jail::cgroup::{CgroupError, Hierarchy};

use super::{read, read_as, CheckError};

/// What Landlock the kernel offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landlock {
    /// Landlock is enabled with this ABI version (1 or more).
    Abi(u32),
    /// The kernel has no landlock_create_ruleset (ENOSYS).
    NotBuilt,
    /// Built in but not enabled in the `lsm=` list (EOPNOTSUPP).
    Disabled,
}

impl Landlock {
    /// The ABI version, 0 when unsupported.
    pub fn abi(self) -> u32 {
        match self {
            Landlock::Abi(v) => v,
            Landlock::NotBuilt | Landlock::Disabled => 0,
        }
    }
}

impl fmt::Display for Landlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Landlock::Abi(v) => write!(f, "ABI {v}"),
            Landlock::NotBuilt => f.write_str("unsupported (kernel without Landlock)"),
            Landlock::Disabled => f.write_str("unsupported (not in the lsm= list)"),
        }
    }
}

/// User namespace limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserNs {
    /// /proc/sys/user/max_user_namespaces; 0 means none can be made.
    pub max: u64,
    /// /proc/sys/kernel/unprivileged_userns_clone, where the kernel has it.
    pub unprivileged: Option<bool>,
}

impl fmt::Display for UserNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.max == 0 {
            return f.write_str("missing (max_user_namespaces is 0)");
        }
        write!(f, "ok (max {})", self.max)?;
        if self.unprivileged == Some(false) {
            f.write_str(", root only (unprivileged_userns_clone is 0)")?;
        }
        Ok(())
    }
}

/// Which cgroup hierarchy is mounted at /sys/fs/cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Unified hierarchy (cgroup.controllers at the root).
    V2,
    /// v1 controllers with a v2 hierarchy at /sys/fs/cgroup/unified.
    V1Hybrid,
    /// v1 controllers only.
    V1,
    /// Nothing at /sys/fs/cgroup.
    NotMounted,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V2 => "v2",
            CgroupVersion::V1Hybrid => "v1 hybrid",
            CgroupVersion::V1 => "v1",
            CgroupVersion::NotMounted => "not mounted",
        })
    }
}

/// What the kernel offers the jail; `cordon run` refuses to start without
/// every part of it (or runs unjailed with `--no-jail`, for debugging).
#[derive(Debug)]
pub struct JailReport {
    /// landlock_create_ruleset(NULL, 0, VERSION), or why it failed.
    pub landlock: Result<Landlock, CheckError>,
    /// Seccomp filters with SECCOMP_RET_TRAP, or why not.
    pub seccomp: Result<(), CheckError>,
    /// User namespace limits, or why they could not be read.
    pub userns: Result<UserNs, CheckError>,
    /// The cgroup hierarchy.
    pub cgroup: CgroupVersion,
    /// Where the memory, cpu and pids controllers are, or which is missing.
    pub controllers: Result<Hierarchy, CgroupError>,
    /// Whether this user may create the sandbox cgroups there.
    pub cgroup_writable: bool,
}

impl JailReport {
    /// Why the jail cannot be built here, or Ok.
    pub fn ready(&self) -> Result<(), String> {
        let mut missing = Vec::new();
        if self.landlock.as_ref().map_or(true, |l| l.abi() == 0) {
            missing.push("Landlock");
        }
        if self.seccomp.is_err() {
            missing.push("seccomp filters");
        }
        if self.userns.as_ref().map_or(true, |u| u.max == 0) {
            missing.push("user namespaces");
        }
        if self.controllers.is_err() {
            missing.push("cgroup controllers");
        } else if !self.cgroup_writable {
            missing.push("a cgroup this user may write");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {}", missing.join(", ")))
        }
    }
}

/// Probes what the kernel offers the jail.
pub fn probe() -> JailReport {
    let controllers = Hierarchy::detect();
    let cgroup_writable = controllers.as_ref().is_ok_and(writable);
    JailReport {
        landlock: landlock(),
        seccomp: seccomp(),
        userns: userns(),
        cgroup: cgroup_version(Path::new("/sys/fs/cgroup")),
        controllers,
        cgroup_writable,
    }
}

/// Whether this user may create cgroups where the sandboxes go: the
/// `cordon` directory if it exists (an administrator may have delegated
/// it), else its parent, in every hierarchy.
fn writable(h: &Hierarchy) -> bool {
    let bases = match h {
        Hierarchy::V1 { memory, cpu, pids } => vec![memory, cpu, pids],
        Hierarchy::V2 { base } => vec![base],
    };
    bases.into_iter().all(|base| {
        let dir = base.join(jail::cgroup::PARENT_DIR);
        let dir = if dir.is_dir() { dir } else { base.clone() };
        let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        // SAFETY: access only reads the NUL-terminated path.
        unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
    })
}

/// The controllers line of the report.
pub fn describe_controllers(h: &Hierarchy) -> String {
    match h {
        Hierarchy::V1 { memory, .. } => {
            format!("memory, cpu, pids (v1, e.g. {})", memory.display())
        }
        Hierarchy::V2 { base } => format!("memory, cpu, pids (v2, under {})", base.display()),
    }
}

fn landlock() -> Result<Landlock, CheckError> {
    use jail::landlock::LandlockError;
    match jail::landlock::kernel_abi() {
        Ok(abi) => Ok(Landlock::Abi(abi)),
        Err(LandlockError::NotImplemented) => Ok(Landlock::NotBuilt),
        Err(LandlockError::NotEnabled) => Ok(Landlock::Disabled),
        Err(LandlockError::Probe(source)) => Err(CheckError::Syscall {
            call: "landlock_create_ruleset",
            source,
        }),
        Err(other) => Err(CheckError::Syscall {
            call: "landlock_create_ruleset",
            source: io::Error::other(other.to_string()),
        }),
    }
}

fn seccomp() -> Result<(), CheckError> {
    let trap: u32 = libc::SECCOMP_RET_TRAP;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 through the pointer,
    // which points at a live local; it installs nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0 as libc::c_uint,
            &trap as *const u32,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // Kernels before 4.14 lack the query but may still filter.
    // SAFETY: PR_GET_SECCOMP takes no pointer; it returns the current mode.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    let status = read("/proc/self/status").unwrap_or_default();
    if mode >= 0 && status_has_seccomp_filters(&status) {
        return Ok(());
    }
    Err(CheckError::Syscall {
        call: "seccomp(SECCOMP_GET_ACTION_AVAIL, SECCOMP_RET_TRAP)",
        source: err,
    })
}

/// Whether /proc/self/status text shows a kernel with seccomp filters.
fn status_has_seccomp_filters(status: &str) -> bool {
    status.lines().any(|l| l.starts_with("Seccomp_filters:"))
}

fn userns() -> Result<UserNs, CheckError> {
    let max = read_number("/proc/sys/user/max_user_namespaces")?;
    let unprivileged = match read_number("/proc/sys/kernel/unprivileged_userns_clone") {
        Ok(v) => Some(v != 0),
        Err(_) => None,
    };
    Ok(UserNs { max, unprivileged })
}

fn read_number(path: &'static str) -> Result<u64, CheckError> {
    read_as(path, "number", |text| text.trim().parse().ok())
}

fn cgroup_version(root: &Path) -> CgroupVersion {
    if root.join("cgroup.controllers").exists() {
        CgroupVersion::V2
    } else if root.join("unified").exists() {
        CgroupVersion::V1Hybrid
    } else if root.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        CgroupVersion::V1
    } else {
        CgroupVersion::NotMounted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_filters_line_is_found() {
        let status = "Name:\tcat\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";
        assert!(status_has_seccomp_filters(status));
        assert!(!status_has_seccomp_filters("Name:\tcat\nSeccomp:\t0\n"));
    }

    #[test]
    fn landlock_abi_is_zero_when_unsupported() {
        assert_eq!(Landlock::Abi(6).abi(), 6);
        assert_eq!(Landlock::Disabled.abi(), 0);
        assert_eq!(Landlock::Abi(6).to_string(), "ABI 6");
        assert!(Landlock::NotBuilt.to_string().starts_with("unsupported"));
    }

    #[test]
    fn userns_text() {
        let ns = UserNs {
            max: 96365,
            unprivileged: None,
        };
        assert_eq!(ns.to_string(), "ok (max 96365)");
        let root_only = UserNs {
            unprivileged: Some(false),
            ..ns
        };
        assert!(root_only.to_string().contains("root only"));
        let none = UserNs { max: 0, ..ns };
        assert!(none.to_string().starts_with("missing"));
    }

    #[test]
    fn absent_cgroup_root_is_not_mounted() {
        let root = Path::new("/nonexistent/cordon-check-cgroup");
        assert_eq!(cgroup_version(root), CgroupVersion::NotMounted);
    }
}
