//! One sandbox's share of the jail, made by the supervisor before it spawns
//! the sandbox's first process: its user, net, ipc and uts namespaces and
//! its cgroup. Dropping it removes the cgroup (its processes must be reaped
//! first) and lets the namespaces go once no process holds them.

use jail::cgroup::{CgroupError, CgroupJoin, Hierarchy, Limits, SandboxCgroup};
use jail::namespaces::{NamespaceError, NsFds, SandboxNamespaces};
use jail::seccomp::Mode;

#[derive(Debug, thiserror::Error)]
pub enum JailSetupError {
    #[error("cannot create the sandbox's namespaces")]
    Namespaces(#[from] NamespaceError),
    #[error("cannot create the sandbox's cgroup")]
    Cgroup(#[from] CgroupError),
}

/// A sandbox's namespaces and cgroup.
#[derive(Debug)]
pub struct SandboxJail {
    namespaces: SandboxNamespaces,
    cgroup: SandboxCgroup,
    mode: Mode,
}

impl SandboxJail {
    /// Creates the namespaces and the cgroup `cordon/<name>` with `limits`.
    pub fn create(name: &str, limits: &Limits, mode: Mode) -> Result<Self, JailSetupError> {
        let namespaces = SandboxNamespaces::create()?;
        let cgroup = SandboxCgroup::create(&Hierarchy::detect()?, name, limits)?;
        Ok(SandboxJail {
            namespaces,
            cgroup,
            mode,
        })
    }

    pub(super) fn namespaces(&self) -> NsFds {
        self.namespaces.fds()
    }

    pub(super) fn cgroup_join(&self) -> CgroupJoin {
        self.cgroup.join_fds()
    }

    /// What the sandbox's seccomp filters do on a violation.
    pub fn seccomp_mode(&self) -> Mode {
        self.mode
    }

    /// Removes the cgroup; call once every process of the sandbox is reaped.
    pub fn remove(self) -> Result<(), CgroupError> {
        self.cgroup.remove()
    }
}
