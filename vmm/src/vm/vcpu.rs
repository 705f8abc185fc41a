//! One vCPU thread: enter the guest, serve exits, report how it ended.
//!
//! Kick protocol (how the control thread stops a running vCPU): it sets the
//! shared `stop` flag, unparks the thread (in case it sits in the wait call)
//! and sends it `SIGRTMIN`, whose handler does nothing but make KVM_RUN
//! return EINTR. A signal that lands between the flag check and KVM_RUN is
//! lost, so the control thread repeats the kick every few milliseconds
//! (waiting on the wake eventfd in between) until the vCPU has left its run
//! loop or a deadline passes (`run::stop_vcpus`). A vCPU leaving its loop
//! sends its report, then clears its `in_run_loop` flag, then writes `wake`.

use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use guest_abi::{CONSOLE_WRITE_MAX, EXIT_REASON_MAX, WAIT_FOREVER};
use kvm_ioctls::VcpuFd;
use vmm_sys_util::eventfd::EventFd;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::console::{BudgetExceeded, Console};
use super::exits::{self, Action, Unclaimed};
use crate::arch::x86_64::paging::PageMap;
use crate::boot::layout::Layout;
use crate::events::{FaultKind, VcpuFault, VcpuStatus};

/// State every vCPU thread shares.
pub struct Shared {
    pub console: Console<Stdout>,
    pub unclaimed: Unclaimed,
    pub stop: AtomicBool,
    /// Per vCPU: still in its run loop (cleared before it reports).
    pub in_run_loop: Vec<AtomicBool>,
    /// Written after each report, so the control thread can poll for
    /// reports together with the death pipe.
    pub wake: EventFd,
    pub layout: Layout,
    pub memory: GuestMemoryMmap,
    pub devices: super::devices::Devices,
    pub page_map: PageMap,
}

/// How a vCPU thread ended.
#[derive(Debug)]
pub enum Report {
    Exit {
        status: u32,
        /// Text the guest gave with `PORT_EXIT_REASON`.
        reason: Option<String>,
    },
    ConsoleBudget {
        limit: u64,
    },
    Fault(VcpuFault),
    /// Stopped by a kick; `pc` where it was.
    Stopped {
        vcpu: u32,
        pc: Option<u64>,
    },
}

pub struct Vcpu {
    pub fd: VcpuFd,
    pub index: u32,
    pub status: VcpuStatus,
}

impl Vcpu {
    /// Runs until the guest exits, faults, or the vCPU is kicked; hands
    /// the vCPU back (for `reset-vcpu`).
    pub fn run(mut self, shared: &Shared, reports: Sender<Report>) -> Vcpu {
        let report = self.run_loop(shared);
        // The order matters to `run::stop_vcpus`: the report is in the
        // channel before the flag says this vCPU left its loop, and the wake
        // comes last. The receiver only goes away when the process ends.
        let _ = reports.send(report);
        if let Some(flag) = shared.in_run_loop.get(self.index as usize) {
            flag.store(false, Ordering::Release);
        }
        let _ = shared.wake.write(1);
        self
    }

    fn run_loop(&mut self, shared: &Shared) -> Report {
        loop {
            if shared.stop.load(Ordering::Acquire) {
                return Report::Stopped {
                    vcpu: self.index,
                    pc: self.pc(),
                };
            }
            let action = match self.fd.run() {
                Ok(exit) => exits::handle(
                    exit,
                    self.index as usize,
                    &shared.console,
                    &shared.unclaimed,
                    &shared.devices,
                ),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    self.fd.set_kvm_immediate_exit(0);
                    continue;
                }
                Err(e) => return self.fault(FaultKind::RunFailed { errno: e.errno() }, shared),
            };
            match action {
                Action::Resume => {}
                Action::Wait(us) => wait(us),
                Action::ConsoleWrite => {
                    if let Err(e) = self.console_write(shared) {
                        return Report::ConsoleBudget { limit: e.limit };
                    }
                }
                Action::Exit(status) => {
                    return Report::Exit {
                        status,
                        reason: None,
                    }
                }
                Action::ExitWithReason(status) => {
                    return Report::Exit {
                        status,
                        reason: self.exit_reason(shared),
                    }
                }
                Action::ConsoleBudget(limit) => return Report::ConsoleBudget { limit },
                Action::Shutdown => return self.fault(FaultKind::Shutdown, shared),
                Action::FailEntry(hardware_reason) => {
                    return self.fault(FaultKind::FailEntry { hardware_reason }, shared)
                }
                Action::InternalError => {
                    // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so
                    // the kernel filled the `internal` member of the union.
                    let suberror =
                        unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
                    return self.fault(FaultKind::InternalError { suberror }, shared);
                }
                Action::Unhandled => {
                    let reason = self.fd.get_kvm_run().exit_reason;
                    return self.fault(FaultKind::UnhandledExit { reason }, shared);
                }
            }
        }
    }

    /// Serves `PORT_CONSOLE_WRITE`: RCX bytes at RSI, both guest-controlled,
    /// so the range is bounded and checked against guest RAM before use.
    fn console_write(&self, shared: &Shared) -> Result<(), BudgetExceeded> {
        let Ok(regs) = self.fd.get_regs() else {
            return Ok(());
        };
        let (addr, len) = (regs.rsi, regs.rcx);
        let mut buf = match usize::try_from(len) {
            Ok(n) if len <= CONSOLE_WRITE_MAX => vec![0u8; n],
            _ => {
                shared.unclaimed.bad_console_write(addr, len);
                return Ok(());
            }
        };
        if shared
            .memory
            .read_slice(&mut buf, GuestAddress(addr))
            .is_err()
        {
            shared.unclaimed.bad_console_write(addr, len);
            return Ok(());
        }
        shared.console.write(self.index as usize, &buf)
    }

    /// The reason text of `PORT_EXIT_REASON`: RCX bytes at RSI, both
    /// guest-controlled, bounded and checked against guest RAM; None if the
    /// range is bad. Not UTF-8 and control characters are replaced.
    fn exit_reason(&self, shared: &Shared) -> Option<String> {
        let regs = self.fd.get_regs().ok()?;
        let len = usize::try_from(regs.rcx.min(EXIT_REASON_MAX)).ok()?;
        let mut buf = vec![0u8; len];
        shared
            .memory
            .read_slice(&mut buf, GuestAddress(regs.rsi))
            .ok()?;
        let text = String::from_utf8_lossy(&buf);
        Some(
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    }

    fn pc(&self) -> Option<u64> {
        self.fd.get_regs().ok().map(|r| r.rip)
    }

    fn fault(&mut self, kind: FaultKind, shared: &Shared) -> Report {
        self.status = kind.status();
        let sregs = self.fd.get_sregs().ok();
        // SVM's KVM resets a vCPU that shut down (its state is undefined
        // then) before reporting: it sits at the reset vector, and the pc
        // and CR2 of the fault are gone.
        let was_reset = kind == FaultKind::Shutdown
            && sregs.is_some_and(|s| s.cs.base == RESET_CS_BASE && s.cs.selector == 0xf000);
        let (pc, hint) = if was_reset {
            (
                None,
                Some(
                    "KVM reset the vCPU when it shut down (SVM), so where it faulted is lost"
                        .into(),
                ),
            )
        } else {
            let hint = sregs.and_then(|s| fault_hint(s.cr2, &shared.layout, &shared.page_map));
            (self.pc(), hint)
        };
        Report::Fault(VcpuFault {
            vcpu: self.index,
            kind,
            pc,
            hint,
            status: self.status,
        })
    }
}

/// CS base of an x86 vCPU at its reset vector (RIP 0xfff0).
const RESET_CS_BASE: u64 = 0xffff_0000;

/// Blocks for the ABI's wait call. No device can signal yet, so only the
/// deadline or a kick (unpark) ends it.
fn wait(us: u32) {
    if us == WAIT_FOREVER {
        std::thread::park();
    } else {
        std::thread::park_timeout(Duration::from_micros(u64::from(us)));
    }
}

/// What CR2 says about a fault. Without an IDT every page fault is fatal, so
/// a non-zero CR2 is the address of the fault that started it.
pub fn fault_hint(cr2: u64, layout: &Layout, map: &PageMap) -> Option<String> {
    if cr2 == 0 {
        return None;
    }
    let why = if let Some(owner) = layout.guard_owner(cr2) {
        format!("stack overflow into the guard page of vCPU {owner}")
    } else {
        match map.attr_at(cr2) {
            None => "unmapped address".to_string(),
            Some(a) if !a.user => "address reserved for cordon".to_string(),
            Some(a) if !a.writable => "read-only page (a write to code or boot info?)".to_string(),
            Some(_) => "mapped page (execute of data?)".to_string(),
        }
    };
    Some(format!("page fault at {cr2:#x}: {why}"))
}

/// `SIGRTMIN`'s handler: only interrupts KVM_RUN.
extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the kick signal's handler (once per vm process).
pub fn install_kick_handler() -> Result<(), vmm_sys_util::errno::Error> {
    vmm_sys_util::signal::register_signal_handler(vmm_sys_util::signal::SIGRTMIN(), on_kick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_guard_page_and_read_only_pages() {
        let layout = Layout::new(64 << 20, 1, 0x20_2000).unwrap();
        let mut map = PageMap::default();
        map.set(
            0x20_0000..0x20_1000,
            Some(crate::arch::x86_64::paging::PageAttr::READ_ONLY),
        );
        let guard = fault_hint(layout.stacks[0].guard + 0xff8, &layout, &map).unwrap();
        assert!(guard.contains("guard page of vCPU 0"), "{guard}");
        let ro = fault_hint(0x20_0010, &layout, &map).unwrap();
        assert!(ro.contains("read-only"), "{ro}");
        assert_eq!(fault_hint(0, &layout, &map), None);
    }
}
