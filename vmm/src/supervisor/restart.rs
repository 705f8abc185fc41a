//! The supervisor's side of the restart policy: for each vCPU fault or
//! vm process death, the action the policy and the budget allow, logged
//! on stderr and written to `--events`.

use std::time::Instant;

use super::event_log::{EventLog, FaultRecord};
use crate::policy::{FaultAction, RestartBudget, RestartPolicy};

/// What to do about one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// End the sandbox; `budget_spent` says whether a restart was refused.
    Stop { budget_spent: bool },
    /// Reset the vCPU with this boot counter.
    ResetVcpu { boot_counter: u64 },
    /// Replace the vm and device processes; the next boot has this counter.
    Reboot { boot_counter: u64 },
    /// Start the device process again; the vm process reconnects to it.
    RestartDevice,
}

/// A fault as the supervisor saw it.
pub struct Fault<'a> {
    /// "vm" for the vm process, None for a vCPU.
    pub process: Option<&'a str>,
    pub vcpu: Option<u32>,
    /// One line: what happened.
    pub cause: String,
    pub pc: Option<u64>,
    /// Whether the faulted vCPU can be repaired in place.
    pub vcpu_repairable: bool,
}

/// A sandbox's restarts so far.
pub struct Restarts {
    policy: RestartPolicy,
    budget: RestartBudget,
    boot_counter: u64,
    vcpus: u32,
    sandbox: String,
}

impl Restarts {
    pub fn new(policy: RestartPolicy, vcpus: u32, sandbox: String) -> Restarts {
        Restarts {
            budget: RestartBudget::new(&policy),
            policy,
            boot_counter: 0,
            vcpus,
            sandbox,
        }
    }

    /// The boot counter of the current boot (0 for the first).
    pub fn boot_counter(&self) -> u64 {
        self.boot_counter
    }

    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// The sandbox's vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.vcpus
    }

    /// Decides what a vCPU fault or a vm process death leads to, prints it
    /// on stderr and records it.
    pub fn decide(&mut self, fault: &Fault, events: &mut EventLog) -> Decision {
        let wanted = self.policy.action(self.vcpus, fault.vcpu_repairable);
        self.decide_for(wanted, fault, events)
    }

    /// Decides what a device process's death leads to: under `stop`, the
    /// end; under the others, the device is restarted (budget permitting).
    pub fn decide_device(&mut self, fault: &Fault, events: &mut EventLog) -> Decision {
        self.decide_for(self.policy.on_vcpu_fault, fault, events)
    }

    fn decide_for(
        &mut self,
        wanted: FaultAction,
        fault: &Fault,
        events: &mut EventLog,
    ) -> Decision {
        let device = fault.process.is_some_and(|p| p != "vm");
        let decision = match wanted {
            FaultAction::Stop => Decision::Stop {
                budget_spent: false,
            },
            _ => match self.budget.take(Instant::now()) {
                None => Decision::Stop { budget_spent: true },
                Some(_) if device => Decision::RestartDevice,
                Some(_) => {
                    self.boot_counter += 1;
                    let boot_counter = self.boot_counter;
                    if wanted == FaultAction::ResetVcpu {
                        Decision::ResetVcpu { boot_counter }
                    } else {
                        Decision::Reboot { boot_counter }
                    }
                }
            },
        };
        let action = match decision {
            Decision::Stop { .. } => FaultAction::Stop.name(),
            Decision::ResetVcpu { .. } => FaultAction::ResetVcpu.name(),
            Decision::Reboot { .. } => FaultAction::Reboot.name(),
            Decision::RestartDevice => "restart-device",
        };
        let restarts = self.budget.total();
        let what = match decision {
            Decision::Stop {
                budget_spent: false,
            } => "action: stop".to_string(),
            Decision::Stop { budget_spent: true } => format!(
                "action: stop, the restart budget is spent ({} restarts within {} s)",
                self.policy.max_restarts,
                self.policy.window.as_secs_f64()
            ),
            _ => format!(
                "action: {action} (restart {restarts}; at most {} within {} s)",
                self.policy.max_restarts,
                self.policy.window.as_secs_f64()
            ),
        };
        log::warn!("{}; {what}", fault.cause);
        events.fault(FaultRecord {
            sandbox: self.sandbox.clone(),
            process: fault.process.map(str::to_string),
            vcpu: fault.vcpu,
            cause: fault.cause.clone(),
            pc: fault.pc,
            action,
            restarts,
        });
        decision
    }
}
