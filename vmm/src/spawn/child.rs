//! The child's side after exec: the first act of every spawned process's
//! main is [`enter_jail`], with what the spawn helper put in its argv
//! (`cordon ROLE KEPT MODE`).

use jail::landlock::Enforced;
use jail::process::{JailError, ProcessJail};
use jail::rlimits::Limits;
use jail::seccomp::Mode;

use super::{Role, CONTROL_FD, FIRST_KEPT_FD, MAX_KEPT};

/// Most fds the vm process may open: KVM's VM and vCPU fds, eventfds for
/// every queue, the device sockets, with room.
const VM_MAX_OPEN_FILES: u64 = 256;
/// Most fds a device process may open: its sockets, the image, eventfds
/// for its queues and its worker threads, with room.
const DEVICE_MAX_OPEN_FILES: u64 = 128;

/// How the spawn helper started a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildMode {
    /// The whole jail; seccomp in this mode.
    Jailed(Mode),
    /// `--no-jail`.
    Unjailed,
}

impl ChildMode {
    /// The child's argv[3].
    pub const fn arg(self) -> &'static str {
        match self {
            ChildMode::Jailed(Mode::Enforce) => "jail",
            ChildMode::Jailed(Mode::Log) => "jail-seccomp-log",
            ChildMode::Unjailed => "no-jail",
        }
    }

    /// The inverse of `arg`.
    pub fn parse(arg: &str) -> Option<ChildMode> {
        [
            ChildMode::Jailed(Mode::Enforce),
            ChildMode::Jailed(Mode::Log),
            ChildMode::Unjailed,
        ]
        .into_iter()
        .find(|m| m.arg() == arg)
    }

    /// The seccomp mode for the threads that add their own filter (vCPUs).
    pub fn seccomp(self) -> Option<Mode> {
        match self {
            ChildMode::Jailed(mode) => Some(mode),
            ChildMode::Unjailed => None,
        }
    }
}

/// Applies the whole jail for `role` to this process, which holds stdio,
/// the control socket, the death pipe and `kept` fds from 5 up. Must run
/// while the process is single-threaded. Does nothing when unjailed.
pub fn enter_jail(role: Role, kept: usize, mode: ChildMode) -> Result<Option<Enforced>, JailError> {
    let ChildMode::Jailed(seccomp_mode) = mode else {
        return Ok(None);
    };
    let kept = kept.min(MAX_KEPT) as i32;
    let keep: Vec<i32> = (0..FIRST_KEPT_FD + kept).collect();
    let max_open_files = match role {
        Role::Vm => VM_MAX_OPEN_FILES,
        Role::Device(_) => DEVICE_MAX_OPEN_FILES,
    };
    let jail = ProcessJail {
        keep: &keep,
        limits: Limits { max_open_files },
        paths: &[],
        report_fd: CONTROL_FD,
        seccomp: role.seccomp(),
        mode: seccomp_mode,
    };
    jail::process::enter(&jail).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_argv() {
        for mode in [
            ChildMode::Jailed(Mode::Enforce),
            ChildMode::Jailed(Mode::Log),
            ChildMode::Unjailed,
        ] {
            assert_eq!(ChildMode::parse(mode.arg()), Some(mode));
        }
        assert_eq!(ChildMode::parse("jail "), None);
    }
}
