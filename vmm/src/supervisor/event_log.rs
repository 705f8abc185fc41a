//! `--events FILE`: one JSON object per line for each thing that happens
//! to a sandbox, for tools and tests: the vm process's events as they
//! arrive, each fault with the action the restart policy took, a seccomp
//! violation with the process and the call, and the end with the exit
//! status and its cause. `time` is seconds since the supervisor started the
//! sandbox.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::Outcome;
use crate::events::VmEvent;
use crate::exit::SandboxExit;

/// A seccomp violation, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportedViolation {
    /// "vm", or the device process's name ("block0", "rng", ...).
    pub process: String,
    /// None when the kernel killed the process before its reporter ran, or
    /// the SIGSYS did not come from seccomp.
    pub syscall: Option<i64>,
    pub name: Option<&'static str>,
    pub arch: Option<&'static str>,
}

/// A vCPU fault or a vm process death, and what the policy made of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// The sandbox's name (its cgroup's, "sandbox-<supervisor pid>").
    pub sandbox: String,
    /// "vm" when the vm process died; None for a vCPU fault.
    pub process: Option<String>,
    pub vcpu: Option<u32>,
    pub cause: String,
    /// The guest's program counter, where it could be read.
    pub pc: Option<u64>,
    /// "stop", "reset-vcpu" or "reboot".
    pub action: &'static str,
    /// Restarts so far, this one included.
    pub restarts: u64,
}

/// One thing that happened to a sandbox, as `--events` writes it (one
/// JSON line each, tagged by `event`) and as `Outcome::events` lists it.
/// `time` is seconds since the supervisor started the sandbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SandboxEvent {
    Vm {
        time: f64,
        vm: VmEvent,
    },
    Fault {
        time: f64,
        #[serde(flatten)]
        fault: FaultRecord,
    },
    Violation {
        time: f64,
        violation: ReportedViolation,
    },
}

/// The last line of `--events`.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum End<'a> {
    End {
        time: f64,
        exit: u8,
        cause: Option<&'static str>,
        reason: Option<&'a str>,
    },
}

/// Most events an `Outcome` carries; a sandbox that restarts without end
/// (a tiny `--restart-window`) keeps its first ones.
const KEPT_MAX: usize = 1024;

/// Where events go: the `--events` file, if any, and the list the outcome
/// carries.
pub struct EventLog {
    file: Option<File>,
    start: Instant,
    kept: Vec<SandboxEvent>,
}

impl EventLog {
    /// Creates (or truncates) `path`.
    pub fn create(path: Option<&Path>) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: path.map(File::create).transpose()?,
            start: Instant::now(),
            kept: Vec::new(),
        })
    }

    fn write(&mut self, record: &impl Serialize) {
        let Some(file) = &mut self.file else { return };
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => return log::warn!("cannot encode an event: {e}"),
        };
        line.push(b'\n');
        if let Err(e) = file.write_all(&line) {
            log::warn!("cannot write to the --events file: {e}");
            self.file = None;
        }
    }

    fn time(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn record(&mut self, event: SandboxEvent) {
        self.write(&event);
        if self.kept.len() < KEPT_MAX {
            self.kept.push(event);
        }
    }

    pub fn vm(&mut self, vm: &VmEvent) {
        let time = self.time();
        self.record(SandboxEvent::Vm {
            time,
            vm: vm.clone(),
        });
    }

    pub fn fault(&mut self, fault: FaultRecord) {
        let time = self.time();
        self.record(SandboxEvent::Fault { time, fault });
    }

    /// The end, with a violation record first if that is how it ended;
    /// hands over every event kept for the outcome.
    pub fn end(&mut self, outcome: &Outcome) -> Vec<SandboxEvent> {
        if let Some(violation) = &outcome.violation {
            let time = self.time();
            self.record(SandboxEvent::Violation {
                time,
                violation: violation.clone(),
            });
        }
        let cause = match outcome.exit {
            SandboxExit::Guest(_) => None,
            SandboxExit::Cordon(cause) => Some(cause.name()),
        };
        self.write(&End::End {
            time: self.time(),
            exit: outcome.exit.code(),
            cause,
            reason: outcome.reason.as_deref(),
        });
        std::mem::take(&mut self.kept)
    }
}
