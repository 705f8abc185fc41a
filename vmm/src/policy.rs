//! A sandbox's restart policy: what happens when a vCPU faults or the vm
//! process dies (`--on-vcpu-fault`), and how many restarts it gets
//! (`--max-restarts` within `--restart-window`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the supervisor does when a vCPU faults or the vm process dies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    /// End the sandbox with the fault's exit code.
    #[default]
    Stop,
    /// Re-initialise the faulted vCPU and run it again from its entry, with
    /// the image reloaded and the boot counter incremented (single-vCPU
    /// sandboxes; others get `Reboot`).
    ResetVcpu,
    /// Replace the vm process (and its device processes) with fresh ones on
    /// fresh guest memory, with the boot counter incremented.
    Reboot,
}

impl FaultAction {
    pub const ALL: [FaultAction; 3] = [
        FaultAction::Stop,
        FaultAction::ResetVcpu,
        FaultAction::Reboot,
    ];

    /// The flag's spelling.
    pub const fn name(self) -> &'static str {
        match self {
            FaultAction::Stop => "stop",
            FaultAction::ResetVcpu => "reset-vcpu",
            FaultAction::Reboot => "reboot",
        }
    }
}

impl std::str::FromStr for FaultAction {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultAction, String> {
        FaultAction::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("{s:?} is not stop, reset-vcpu or reboot"))
    }
}

impl std::fmt::Display for FaultAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default `--max-restarts`.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// Default `--restart-window`, seconds.
pub const DEFAULT_RESTART_WINDOW_SECS: u64 = 60;

/// `--on-vcpu-fault`, `--max-restarts`, `--restart-window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub on_vcpu_fault: FaultAction,
    /// Restarts allowed within `window`; the next fault stops the sandbox.
    pub max_restarts: u32,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            on_vcpu_fault: FaultAction::Stop,
            max_restarts: DEFAULT_MAX_RESTARTS,
            window: Duration::from_secs(DEFAULT_RESTART_WINDOW_SECS),
        }
    }
}

impl RestartPolicy {
    /// The action for a fault of a sandbox with `vcpus` vCPUs: `reset-vcpu`
    /// becomes `reboot` when there is more than one vCPU or the vCPU
    /// cannot be repaired in place (`vcpu_repairable` false, e.g. the vm
    /// process is gone).
    pub fn action(&self, vcpus: u32, vcpu_repairable: bool) -> FaultAction {
        self.on_vcpu_fault.for_fault(vcpus, vcpu_repairable)
    }
}

impl FaultAction {
    /// This `--on-vcpu-fault` applied to a fault of a sandbox with `vcpus`
    /// vCPUs (see `RestartPolicy::action`); the vm process, which knows
    /// only the flag, asks it too.
    pub fn for_fault(self, vcpus: u32, vcpu_repairable: bool) -> FaultAction {
        match self {
            FaultAction::ResetVcpu if vcpus > 1 || !vcpu_repairable => FaultAction::Reboot,
            action => action,
        }
    }
}

/// The restarts a sandbox has made, against its policy's budget.
#[derive(Debug)]
pub struct RestartBudget {
    max: u32,
    window: Duration,
    recent: VecDeque<Instant>,
    total: u64,
}

impl RestartBudget {
    pub fn new(policy: &RestartPolicy) -> RestartBudget {
        RestartBudget {
            max: policy.max_restarts,
            window: policy.window,
            recent: VecDeque::new(),
            total: 0,
        }
    }

    /// Takes one restart at `now` if fewer than `max` were taken within
    /// the window before it; returns the restart's number (1 for the
    /// first), or None when the budget is spent.
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        while let Some(&first) = self.recent.front() {
            if now.duration_since(first) >= self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.max as usize {
            return None;
        }
        self.recent.push_back(now);
        self.total += 1;
        Some(self.total)
    }

    /// Restarts taken so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_the_restart_past_its_max_and_refills_after_the_window() {
        let policy = RestartPolicy {
            max_restarts: 2,
            window: Duration::from_secs(10),
            ..RestartPolicy::default()
        };
        let mut budget = RestartBudget::new(&policy);
        let t0 = Instant::now();
        assert_eq!(budget.take(t0), Some(1));
        assert_eq!(budget.take(t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(budget.take(t0 + Duration::from_secs(2)), None);
        // The first restart has left the window; one more fits.
        assert_eq!(budget.take(t0 + Duration::from_secs(10)), Some(3));
        assert_eq!(budget.take(t0 + Duration::from_secs(10)), None);
        assert_eq!(budget.total(), 3);
    }

    #[test]
    fn no_restarts_at_all_with_a_zero_budget() {
        let policy = RestartPolicy {
            max_restarts: 0,
            ..RestartPolicy::default()
        };
        assert_eq!(RestartBudget::new(&policy).take(Instant::now()), None);
    }

    #[test]
    fn reset_vcpu_falls_back_to_reboot() {
        let policy = RestartPolicy {
            on_vcpu_fault: FaultAction::ResetVcpu,
            ..RestartPolicy::default()
        };
        assert_eq!(policy.action(1, true), FaultAction::ResetVcpu);
        assert_eq!(policy.action(2, true), FaultAction::Reboot);
        assert_eq!(policy.action(1, false), FaultAction::Reboot);
        assert_eq!(RestartPolicy::default().action(1, true), FaultAction::Stop);
    }

    #[test]
    fn actions_parse_from_their_flag_spelling() {
        for a in FaultAction::ALL {
            assert_eq!(a.name().parse::<FaultAction>(), Ok(a));
        }
        assert!("restart".parse::<FaultAction>().is_err());
    }
}
