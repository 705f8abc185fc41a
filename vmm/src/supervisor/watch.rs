//! The supervisor's event loop for one vm process: its events, its exit,
//! SIGINT/SIGTERM and the timeout backstop, until the child is reaped.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use super::devices::{DeviceSetupError, RunningDevice};
use super::event_log::{EventLog, ReportedViolation};
use super::restart::{Decision, Fault, Restarts};
use super::signals::StopSignals;
use super::Outcome;
use crate::control::{self, ControlError, FrameReader, FromVm, ToVm};
use crate::events::{VcpuFault, VcpuStatus, VmEvent};
use crate::exit::{ExitCause, SandboxExit};
use crate::policy::FaultAction;
use crate::spawn::Child;
use jail::seccomp::Violation;

/// How long past `--timeout` the supervisor waits for the vm process to stop
/// on its own before killing it.
const BACKSTOP_GRACE: Duration = Duration::from_secs(2);
/// How long a child that reported its end gets to exit before SIGKILL.
const EXIT_GRACE: Duration = Duration::from_secs(2);

fn cordon(cause: ExitCause, reason: String) -> Outcome {
    Outcome {
        exit: SandboxExit::Cordon(cause),
        reason: Some(reason),
        violation: None,
        events: Vec::new(),
    }
}

/// The outcome of `--timeout` passing, with `reason`.
pub fn timed_out(reason: String) -> Outcome {
    cordon(ExitCause::Timeout, reason)
}

/// What the supervisor knows of the sandbox it watches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    /// `--timeout`, for messages.
    pub timeout: Option<Duration>,
    /// When `--timeout` passes (for the whole sandbox, reboots included).
    pub deadline: Option<Instant>,
    /// The guest is the Wasm runtime: its statuses above 255 are its own
    /// causes (`guest_abi::wasm_exit`).
    pub wasm: bool,
}

/// The outcome of a guest's exit.
fn guest_exit(status: u32, reason: Option<String>, wasm: bool) -> Outcome {
    if let Ok(status) = u8::try_from(status) {
        log::info!("guest exited with status {status}");
        return Outcome {
            exit: SandboxExit::Guest(status),
            reason: None,
            violation: None,
            events: Vec::new(),
        };
    }
    match ExitCause::of_wasm_runtime(status).filter(|_| wasm) {
        Some(cause) => {
            let reason = reason.unwrap_or_else(|| format!("wasm: {}", cause.name()));
            cordon(cause, reason)
        }
        None => cordon(
            ExitCause::BadGuestExit,
            format!("guest exit value {status} is above 255"),
        ),
    }
}

/// What one event from the vm process means for the watch loop.
#[derive(Debug)]
enum Step {
    /// Nothing ends.
    Continue,
    /// The sandbox ends with this outcome.
    End(Outcome),
    /// A vCPU faulted: the restart policy decides.
    Fault(VcpuFault),
}

fn step_of(event: VmEvent, expect: &Expect) -> Step {
    match outcome_of(event, expect) {
        Ok(Some(outcome)) => Step::End(outcome),
        Ok(None) => Step::Continue,
        Err(fault) => Step::Fault(fault),
    }
}

/// The outcome a terminal event means (None for the others, which are
/// logged), or the fault the restart policy decides about.
fn outcome_of(event: VmEvent, expect: &Expect) -> Result<Option<Outcome>, VcpuFault> {
    Ok(match event {
        VmEvent::Started { vcpus } => {
            log::debug!("guest started on {vcpus} vCPU(s)");
            None
        }
        VmEvent::Unclaimed(c) => {
            log::warn!(
                "guest made {} unclaimed accesses: {} port reads, {} port writes, {} MMIO reads, {} MMIO writes",
                c.total(), c.port_reads, c.port_writes, c.mmio_reads, c.mmio_writes
            );
            None
        }
        VmEvent::DeviceReconnected { slot, error } => {
            match error {
                None => log::debug!("device slot {slot} reconnected"),
                Some(e) => log::warn!("device slot {slot} could not be reconnected: {e}"),
            }
            None
        }
        VmEvent::GuestExit { status, reason } => Some(guest_exit(status, reason, expect.wasm)),
        VmEvent::VcpuFault(fault) => return Err(fault),
        VmEvent::ConsoleBudget { limit } => Some(cordon(
            ExitCause::ConsoleBudget,
            format!("guest wrote past its console budget of {limit} bytes"),
        )),
        VmEvent::Timeout { pcs } => {
            let secs = expect.timeout.map_or(0.0, |t| t.as_secs_f64());
            let at: Vec<String> = pcs
                .iter()
                .map(|p| format!("vCPU {} at pc {:#x}", p.vcpu, p.pc))
                .collect();
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" ({})", at.join(", "))
            };
            Some(cordon(
                ExitCause::Timeout,
                format!("timeout after {secs} s{at}"),
            ))
        }
        VmEvent::BootFailed { cause, message } => Some(cordon(cause, message)),
    })
}

fn poll(fds: &mut [libc::pollfd], deadline: Option<Instant>) {
    let ms = deadline.map_or(-1, |d| {
        let left = d.saturating_duration_since(Instant::now()).as_millis();
        i32::try_from(left).unwrap_or(i32::MAX)
    });
    // SAFETY: `fds` is a valid, initialised slice of pollfd for its length.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads pending events; returns the first that ends the sandbox or asks
/// the restart policy (a vm process sends nothing after either).
/// Sets `open` to false once the socket is closed or broken.
fn drain(
    child: &mut Child,
    reader: &mut FrameReader,
    open: &mut bool,
    expect: &Expect,
    events: &mut EventLog,
) -> Option<Step> {
    let mut result = None;
    match reader.read_available::<FromVm>(&mut child.control) {
        Ok(msgs) => {
            for FromVm::Event(event) in msgs {
                events.vm(&event);
                let step = step_of(event, expect);
                if result.is_none() && !matches!(step, Step::Continue) {
                    result = Some(step);
                }
            }
        }
        Err(ControlError::Closed) => *open = false,
        Err(e) => {
            log::error!("vm process sent a bad control message: {e}");
            *open = false;
        }
    }
    result
}

/// How a watched boot ended.
#[derive(Debug)]
pub enum Watched {
    /// The sandbox ends.
    Ended(Outcome),
    /// The policy replaces the vm and device processes (all reaped).
    Reboot,
}

/// Watches the vm process `child` and the device processes until the
/// sandbox ends or the restart policy reboots it, then reaps them all.
/// vCPU faults and vm process deaths go to `restarts`.
pub fn watch(
    mut child: Child,
    mut devices: Vec<WatchedDevice>,
    signals: &StopSignals,
    expect: Expect,
    events: &mut EventLog,
    restarts: &mut Restarts,
    respawn: &Respawn,
) -> Watched {
    if let Err(e) = child.control.set_nonblocking(true) {
        log::error!("cannot make the control socket non-blocking: {e}");
    }
    let backstop = expect.deadline.map(|d| d + BACKSTOP_GRACE);
    let mut reader = FrameReader::default();
    let mut open = true;
    // Device processes the loop already reaped.
    let mut dead = Vec::new();
    let watched = loop {
        let control_fd = if open { child.control.as_raw_fd() } else { -1 };
        let mut fds = vec![
            pollfd(control_fd),
            pollfd(signals.raw()),
            pollfd(child.pidfd.as_raw_fd()),
        ];
        fds.extend(devices.iter().map(|d| pollfd(d.child.pidfd.as_raw_fd())));
        poll(&mut fds, backstop);
        if fds[0].revents != 0 {
            match drain(&mut child, &mut reader, &mut open, &expect, events) {
                Some(Step::End(outcome)) => break Watched::Ended(outcome),
                Some(Step::Fault(fault)) => {
                    match vcpu_fault(&fault, &mut child, events, restarts) {
                        Some(watched) => break watched,
                        None => continue,
                    }
                }
                _ => {}
            }
            // Before the devices notice the vm process is gone.
            if let Some(v) = reader.violation {
                break vm_died(violation("vm", "the vm process", Some(v)), events, restarts);
            }
        }
        if let Some(signo) = signals.take() {
            let cause = if signo == libc::SIGINT {
                ExitCause::Interrupted
            } else {
                ExitCause::Terminated
            };
            break Watched::Ended(cordon(cause, format!("stopped by {}", signal_name(signo))));
        }
        // Device deaths before the vm process's: one failure often takes
        // others with it (a backend's death ends the vm process, whose end
        // ends the other backends), and the first is the cause.
        let ready: Vec<usize> = (0..devices.len())
            .filter(|&i| fds[3 + i].revents != 0)
            .collect();
        if !ready.is_empty() {
            let mut deaths: Vec<DeadDevice> = ready
                .into_iter()
                .map(|index| {
                    let child = &devices[index].child;
                    let record = last_violation(child);
                    let status = reap(child, Duration::ZERO);
                    DeadDevice {
                        index,
                        record,
                        status,
                    }
                })
                .collect();
            deaths.sort_by_key(DeadDevice::rank);
            let mut ended = None;
            for death in deaths {
                if ended.is_some() {
                    dead.push(death.index);
                    continue;
                }
                let index = death.index;
                ended = death.handle(&mut devices, &child, events, restarts, respawn);
                if ended.is_some() {
                    dead.push(index);
                }
            }
            if let Some(watched) = ended {
                break watched;
            }
            continue;
        }
        if fds[2].revents != 0 {
            // The child is gone; an event it sent just before may be pending.
            if open {
                match drain(&mut child, &mut reader, &mut open, &expect, events) {
                    Some(Step::End(outcome)) => break Watched::Ended(outcome),
                    Some(Step::Fault(fault)) => {
                        // It cannot be reset any more: only stop or reboot.
                        let fault = VcpuFault {
                            status: VcpuStatus::Unrecoverable,
                            ..fault
                        };
                        if let Some(watched) = vcpu_fault(&fault, &mut child, events, restarts) {
                            break watched;
                        }
                    }
                    _ => {}
                }
            }
            if let Some(v) = reader.violation {
                break vm_died(violation("vm", "the vm process", Some(v)), events, restarts);
            }
            let status = reap(&child, Duration::ZERO);
            if killed_by_sigsys(status) {
                break vm_died(violation("vm", "the vm process", None), events, restarts);
            }
            if jail_failed(status) {
                break Watched::Ended(cordon(ExitCause::HostUnsupported, jail_failure("vm")));
            }
            let died = cordon(
                ExitCause::ChildDied,
                format!("vm process died without a report: {}", describe(status)),
            );
            break vm_died(died, events, restarts);
        }
        if backstop.is_some_and(|b| Instant::now() >= b) {
            break Watched::Ended(cordon(
                ExitCause::Timeout,
                "timeout: the vm process did not stop, killed".into(),
            ));
        }
    };
    let status = reap(&child, EXIT_GRACE);
    log::info!("vm process (pid {}) {}", child.pid, describe(status));
    // With the vm process gone, each backend sees its frontend disconnect
    // and exits on its own.
    for (i, device) in devices.iter().enumerate() {
        if dead.contains(&i) {
            continue;
        }
        let status = reap(&device.child, EXIT_GRACE);
        log::info!(
            "{} device process (pid {}) {}",
            device.name,
            device.child.pid,
            describe(status)
        );
    }
    watched
}

/// A device process the watch loop follows.
pub struct WatchedDevice {
    /// "console0+console1", "block0", "rng".
    pub name: String,
    pub child: Child,
    /// The vm process's slot of its first device (a process may serve
    /// several, in consecutive slots).
    pub first_slot: usize,
}

/// Starts device process `index` (in `devices::start`'s order) again, with
/// fresh fds.
pub type Respawn<'a> = dyn Fn(usize) -> Result<RunningDevice, DeviceSetupError> + 'a;

/// A device process the loop reaped, with how it ended.
struct DeadDevice {
    index: usize,
    record: Option<Violation>,
    status: i32,
}

impl DeadDevice {
    /// How telling this death is (lower first): a seccomp violation, a
    /// signal, a failed jail, a failure exit, a clean exit (which follows
    /// its frontend's end).
    fn rank(&self) -> u8 {
        let status = self.status;
        if self.record.is_some() || killed_by_sigsys(status) {
            0
        } else if libc::WIFSIGNALED(status) {
            1
        } else if jail_failed(status) {
            2
        } else if libc::WEXITSTATUS(status) != 0 {
            3
        } else {
            4
        }
    }

    /// The outcome if the sandbox stops because of this death.
    fn outcome(&self, name: &str) -> Outcome {
        if jail_failed(self.status) {
            cordon(
                ExitCause::HostUnsupported,
                jail_failure(&format!("{name} device")),
            )
        } else if self.record.is_some() || killed_by_sigsys(self.status) {
            violation(name, &format!("the {name} device process"), self.record)
        } else {
            cordon(
                ExitCause::DeviceFailed,
                format!("{name} device process died: {}", describe(self.status)),
            )
        }
    }

    /// Applies the restart policy (a process that could not be jailed is
    /// never restarted). On a restart the new process replaces the dead
    /// one in `devices` and the vm process gets each new connection with
    /// `ToVm::Reconnect`; returns None then, and the watch goes on.
    fn handle(
        self,
        devices: &mut [WatchedDevice],
        vm: &Child,
        events: &mut EventLog,
        restarts: &mut Restarts,
        respawn: &Respawn,
    ) -> Option<Watched> {
        let device = &mut devices[self.index];
        let died = self.outcome(&device.name);
        if jail_failed(self.status) {
            return Some(Watched::Ended(died));
        }
        let seen = Fault {
            process: Some(&device.name),
            vcpu: None,
            cause: died.reason.clone().unwrap_or_default(),
            pc: None,
            vcpu_repairable: false,
        };
        match restarts.decide_device(&seen, events) {
            Decision::RestartDevice => {}
            decision => {
                let spent = matches!(decision, Decision::Stop { budget_spent: true });
                return Some(Watched::Ended(with_budget_note(died, spent)));
            }
        }
        let new = match respawn(self.index) {
            Ok(new) => new,
            Err(e) => {
                let why = format!(
                    "cannot restart the {} device process: {}",
                    device.name,
                    crate::error_chain(&e)
                );
                return Some(Watched::Ended(cordon(ExitCause::DeviceFailed, why)));
            }
        };
        for (j, (_, name, end)) in new.vm_ends.iter().enumerate() {
            let msg = ToVm::Reconnect {
                slot: device.first_slot + j,
            };
            if let Err(e) = control::send_with_fd(&vm.control, &msg, end.as_fd()) {
                // The vm process is gone; the loop sees its pidfd next.
                log::debug!("cannot hand {name} to the vm process: {e}");
            }
        }
        log::debug!(
            "{} device process restarted, pid {}",
            new.name,
            new.child.pid
        );
        device.child = new.child;
        None
    }
}

/// `died`, its reason noting a spent restart budget if `spent`.
fn with_budget_note(died: Outcome, spent: bool) -> Outcome {
    if !spent {
        return died;
    }
    Outcome {
        reason: died
            .reason
            .map(|r| format!("{r}; the restart budget is spent")),
        ..died
    }
}

/// Applies the restart policy to a vCPU fault: None when the vCPU was
/// reset and the watch goes on.
fn vcpu_fault(
    fault: &VcpuFault,
    child: &mut Child,
    events: &mut EventLog,
    restarts: &mut Restarts,
) -> Option<Watched> {
    let seen = Fault {
        process: None,
        vcpu: Some(fault.vcpu),
        cause: fault.to_string(),
        pc: fault.pc,
        vcpu_repairable: fault.status == VcpuStatus::Poisoned,
    };
    // A vm process under reset-vcpu waits for an answer after a fault it
    // could have reset.
    let waiting = restarts
        .policy()
        .action(restarts.vcpus(), seen.vcpu_repairable)
        == FaultAction::ResetVcpu;
    match restarts.decide(&seen, events) {
        Decision::ResetVcpu { boot_counter } => {
            if let Err(e) = control::send(&mut child.control, &ToVm::ResetVcpu { boot_counter }) {
                // It died; the loop sees its pidfd next.
                log::debug!("cannot send the reset: {e}");
            }
            None
        }
        // `decide` gives device restarts only for device processes.
        Decision::Reboot { .. } | Decision::RestartDevice => Some(Watched::Reboot),
        Decision::Stop { budget_spent } => {
            if waiting {
                let _ = control::send(&mut child.control, &ToVm::Stop);
            }
            let mut reason = fault.to_string();
            if budget_spent {
                reason.push_str("; the restart budget is spent");
            }
            Some(Watched::Ended(cordon(ExitCause::VcpuFault, reason)))
        }
    }
}

/// Applies the restart policy to the vm process's death (`died`: the
/// outcome if the sandbox stops).
fn vm_died(died: Outcome, events: &mut EventLog, restarts: &mut Restarts) -> Watched {
    let seen = Fault {
        process: Some("vm"),
        vcpu: None,
        cause: died.reason.clone().unwrap_or_default(),
        pc: None,
        vcpu_repairable: false,
    };
    match restarts.decide(&seen, events) {
        Decision::Stop { budget_spent } => Watched::Ended(with_budget_note(died, budget_spent)),
        // A vm process cannot be reset in place; `decide` gives device
        // restarts only for device processes.
        Decision::ResetVcpu { .. } | Decision::Reboot { .. } | Decision::RestartDevice => {
            Watched::Reboot
        }
    }
}

/// The outcome of a seccomp violation `who` made: with the reporter's
/// record, or without one when the kernel killed the process outright
/// (the call came while SIGSYS was blocked, e.g. inside glibc's
/// pthread_kill, so the handler could not run).
fn violation(process: &str, who: &str, record: Option<Violation>) -> Outcome {
    let call = match record {
        Some(Violation::NOT_SECCOMP) => {
            "SIGSYS not raised by seccomp (sent by another process)".into()
        }
        Some(v) => format!(
            "system call {} ({}, {}) is not in its policy",
            v.syscall,
            v.syscall_name().unwrap_or("unknown"),
            v.arch_name()
        ),
        None => "a system call not in its policy (killed by SIGSYS with the reporter blocked; `--seccomp log` and the kernel log name it)".into(),
    };
    let known = record.filter(|&v| v != Violation::NOT_SECCOMP);
    Outcome {
        violation: Some(ReportedViolation {
            process: process.to_string(),
            syscall: known.map(|v| v.syscall),
            name: known.and_then(Violation::syscall_name),
            arch: known.map(Violation::arch_name),
        }),
        ..cordon(
            ExitCause::JailViolation,
            format!("seccomp violation in {who}: {call}; the process was stopped"),
        )
    }
}

/// A child that could not enter its jail (or jail a vCPU thread) exits
/// with the host-unsupported code after printing why.
fn jail_failed(status: i32) -> bool {
    libc::WIFEXITED(status)
        && libc::WEXITSTATUS(status) == i32::from(ExitCause::HostUnsupported.code())
}

fn jail_failure(process: &str) -> String {
    format!("the {process} process could not be jailed (its error is above; run `cordon check`)")
}

fn killed_by_sigsys(status: i32) -> bool {
    libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS
}

/// The violation record a dead child left on its control socket, if any.
fn last_violation(child: &Child) -> Option<Violation> {
    let mut control = &child.control;
    control.set_nonblocking(true).ok()?;
    let mut reader = FrameReader::default();
    // Devices send nothing else; any frames are ignored.
    let _ = reader.read_available::<serde_json::Value>(&mut control);
    reader.violation
}

/// Waits up to `grace` for the child to exit, then kills it; reaps it.
fn reap(child: &Child, grace: Duration) -> i32 {
    let mut fds = [pollfd(child.pidfd.as_raw_fd())];
    poll(&mut fds, Some(Instant::now() + grace));
    if fds[0].revents == 0 {
        // SAFETY: sending a signal through our own pidfd has no memory effects.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                child.pidfd.as_raw_fd(),
                libc::SIGKILL,
                0,
                0,
            )
        };
    }
    let mut status = 0;
    // SAFETY: `child.pid` is our unreaped child; `status` is a valid int.
    let reaped = unsafe { libc::waitpid(child.pid, &mut status, 0) };
    if reaped < 0 {
        log::debug!("waitpid: {}", std::io::Error::last_os_error());
    }
    status
}

/// "exited with status N" or "killed by signal N (NAME)".
pub fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let signo = libc::WTERMSIG(status);
        format!("killed by signal {signo} ({})", signal_name(signo))
    } else {
        format!("ended with wait status {status:#x}")
    }
}

fn signal_name(signo: i32) -> &'static str {
    match signo {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSYS => "SIGSYS",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGPIPE => "SIGPIPE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_values_above_255_are_cordon_causes() {
        let unikernel = Expect::default();
        let exit = |status| VmEvent::GuestExit {
            status,
            reason: None,
        };
        let ok = outcome_of(exit(7), &unikernel).unwrap().unwrap();
        assert_eq!(ok.exit, SandboxExit::Guest(7));
        assert_eq!(ok.reason, None);
        let bad = outcome_of(exit(4096), &unikernel).unwrap().unwrap();
        assert_eq!(bad.exit, SandboxExit::Cordon(ExitCause::BadGuestExit));
        assert!(outcome_of(VmEvent::Started { vcpus: 1 }, &unikernel)
            .unwrap()
            .is_none());
        // The runtime's own statuses mean something only from the runtime.
        let trap = guest_abi::wasm_exit::TRAP;
        let wasm = Expect {
            wasm: true,
            ..Expect::default()
        };
        let bad = outcome_of(exit(trap), &unikernel).unwrap().unwrap();
        assert_eq!(bad.exit, SandboxExit::Cordon(ExitCause::BadGuestExit));
        let trapped = VmEvent::GuestExit {
            status: trap,
            reason: Some("wasm: trap: unreachable".into()),
        };
        let trapped = outcome_of(trapped, &wasm).unwrap().unwrap();
        assert_eq!(trapped.exit, SandboxExit::Cordon(ExitCause::WasmTrap));
        assert_eq!(trapped.reason.as_deref(), Some("wasm: trap: unreachable"));
    }

    #[test]
    fn a_child_that_could_not_be_jailed_is_told_from_one_that_died() {
        assert!(jail_failed(69 << 8));
        assert!(!jail_failed(1 << 8));
        assert!(!jail_failed(libc::SIGKILL));
        assert!(killed_by_sigsys(libc::SIGSYS));
    }

    #[test]
    fn the_most_telling_of_several_device_deaths_comes_first() {
        let dead = |record, status| DeadDevice {
            index: 0,
            record,
            status,
        };
        let mut ranks = [
            dead(None, 0),
            dead(None, 1 << 8),
            dead(None, 69 << 8),
            dead(None, libc::SIGKILL),
            dead(Some(Violation::NOT_SECCOMP), 159 << 8),
        ]
        .map(|d| d.rank());
        assert_eq!(ranks, [4, 3, 2, 1, 0]);
        ranks.sort_unstable();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn describes_wait_statuses() {
        assert_eq!(describe(3 << 8), "exited with status 3");
        assert_eq!(describe(libc::SIGKILL), "killed by signal 9 (SIGKILL)");
    }
}
