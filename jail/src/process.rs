//! The whole jail of one process, applied in its main right after exec, in
//! the order the crate's docs give: the empty root, closing fds, rlimits,
//! no_new_privs, dropping capabilities, Landlock, the SIGSYS reporter and
//! last the role's seccomp filter. The process must still be
//! single-threaded: the root, capabilities, no_new_privs and Landlock are
//! per thread.

use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::fds::{self, FdsError};
use crate::landlock::{self, Access, Enforced, LandlockError};
use crate::privileges::{self, PrivilegesError};
use crate::rlimits::{self, Limits, RlimitError};
use crate::root::{self, RootError};
use crate::seccomp::{self, SeccompError};

/// What one process's jail consists of.
#[derive(Clone, Debug)]
pub struct ProcessJail<'a> {
    /// The fds the process keeps; every other one is closed.
    pub keep: &'a [RawFd],
    pub limits: Limits,
    /// The only paths Landlock lets the process reach (none for the
    /// processes cordon spawns: everything arrives as an fd).
    pub paths: &'a [(PathBuf, Access)],
    /// Where the SIGSYS reporter writes a violation record.
    pub report_fd: RawFd,
    pub seccomp: seccomp::Role,
    pub mode: seccomp::Mode,
}

/// Which layer failed; each names what the kernel lacks or refused.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("empty root")]
    Root(#[from] RootError),
    #[error("closing inherited fds")]
    Fds(#[from] FdsError),
    #[error("rlimits")]
    Rlimits(#[from] RlimitError),
    #[error("privileges")]
    Privileges(#[from] PrivilegesError),
    #[error("Landlock")]
    Landlock(#[from] LandlockError),
    #[error("seccomp")]
    Seccomp(#[from] SeccompError),
}

/// Applies every layer of `jail` to the calling process; see the module
/// docs. On error the process is partly jailed and must exit.
pub fn enter(jail: &ProcessJail) -> Result<Enforced, JailError> {
    root::enter_empty_root()?;
    fds::close_all_except(jail.keep)?;
    rlimits::apply(&jail.limits)?;
    privileges::no_new_privs()?;
    privileges::drop_all_capabilities()?;
    let enforced = landlock::restrict(jail.paths)?;
    seccomp::install_sigsys_reporter(jail.report_fd)?;
    seccomp::apply(jail.seccomp, jail.mode)?;
    Ok(enforced)
}
