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
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord<'a> {
    /// The sandbox's name (its cgroup's, "sandbox-<supervisor pid>").
    pub sandbox: &'a str,
    /// "vm" when the vm process died; None for a vCPU fault.
    pub process: Option<&'a str>,
    pub vcpu: Option<u32>,
    pub cause: &'a str,
    /// The guest's program counter, where it could be read.
    pub pc: Option<u64>,
    /// "stop", "reset-vcpu" or "reboot".
    pub action: &'static str,
    /// Restarts so far, this one included.
    pub restarts: u64,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Record<'a> {
    Fault {
        time: f64,
        #[serde(flatten)]
        fault: &'a FaultRecord<'a>,
    },
    Vm {
        time: f64,
        vm: &'a VmEvent,
    },
    Violation {
        time: f64,
        violation: &'a ReportedViolation,
    },
    End {
        time: f64,
        exit: u8,
        cause: Option<&'static str>,
        reason: Option<&'a str>,
    },
}

/// Where events go; a no-op without `--events`.
pub struct EventLog {
    file: Option<File>,
    start: Instant,
}

impl EventLog {
    /// Creates (or truncates) `path`.
    pub fn create(path: Option<&Path>) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: path.map(File::create).transpose()?,
            start: Instant::now(),
        })
    }

    fn write(&mut self, record: &Record) {
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

    pub fn vm(&mut self, vm: &VmEvent) {
        self.write(&Record::Vm {
            time: self.time(),
            vm,
        });
    }

    pub fn fault(&mut self, fault: &FaultRecord) {
        self.write(&Record::Fault {
            time: self.time(),
            fault,
        });
    }

    /// The end, with a violation record first if that is how it ended.
    pub fn end(&mut self, outcome: &Outcome) {
        if let Some(violation) = &outcome.violation {
            self.write(&Record::Violation {
                time: self.time(),
                violation,
            });
        }
        let cause = match outcome.exit {
            SandboxExit::Guest(_) => None,
            SandboxExit::Cordon(cause) => Some(cause.name()),
        };
        self.write(&Record::End {
            time: self.time(),
            exit: outcome.exit.code(),
            cause,
            reason: outcome.reason.as_deref(),
        });
    }
}
