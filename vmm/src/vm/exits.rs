//! Every KVM exit of a Guest ABI v1 guest, mapped to what the vCPU loop does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use guest_abi::{PORT_CONSOLE, PORT_CONSOLE_WRITE, PORT_EXIT, PORT_EXIT_REASON, PORT_WAIT};
use kvm_ioctls::VcpuExit;

use super::console::Console;
use super::devices::Devices;
use crate::events::UnclaimedCounts;
use protocol::ratelimit::RateLimiter;

/// What the vCPU loop does after an exit.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the guest again.
    Resume,
    /// The guest asked to exit with this value.
    Exit(u32),
    /// The same, with RCX bytes of reason at RSI.
    ExitWithReason(u32),
    /// Write RCX bytes at RSI to the console.
    ConsoleWrite,
    /// Block until a device signals or this many microseconds pass.
    Wait(u32),
    /// The console budget is spent.
    ConsoleBudget(u64),
    /// The guest shut the vCPU down.
    Shutdown,
    /// KVM could not enter the guest.
    FailEntry(u64),
    /// KVM gave up; the sub-reason is in the kvm_run page.
    InternalError,
    /// An exit no part of cordon serves.
    Unhandled,
}

/// Guest accesses no device claimed: counted, and logged at a bounded rate.
pub struct Unclaimed {
    port_reads: AtomicU64,
    port_writes: AtomicU64,
    mmio_reads: AtomicU64,
    mmio_writes: AtomicU64,
    log: RateLimiter,
}

impl Default for Unclaimed {
    fn default() -> Self {
        Unclaimed {
            port_reads: AtomicU64::new(0),
            port_writes: AtomicU64::new(0),
            mmio_reads: AtomicU64::new(0),
            mmio_writes: AtomicU64::new(0),
            log: RateLimiter::new(5, Duration::from_secs(1)),
        }
    }
}

impl Unclaimed {
    /// A console write the guest described wrongly: dropped, counted with
    /// the unclaimed port writes and logged at a bounded rate.
    pub fn bad_console_write(&self, addr: u64, len: u64) {
        self.port_writes.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.log.check() {
            log::warn!(
                "console write of {len} bytes at {addr:#x} dropped: not in guest RAM or over the limit{}",
                not_logged(suppressed)
            );
        }
    }

    fn note(&self, counter: &AtomicU64, what: &str, addr: u64, len: usize) {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.log.check() {
            log::warn!(
                "unclaimed {what} at {addr:#x} ({len} bytes){}",
                not_logged(suppressed)
            );
        }
    }

    pub fn counts(&self) -> UnclaimedCounts {
        UnclaimedCounts {
            port_reads: self.port_reads.load(Ordering::Relaxed),
            port_writes: self.port_writes.load(Ordering::Relaxed),
            mmio_reads: self.mmio_reads.load(Ordering::Relaxed),
            mmio_writes: self.mmio_writes.load(Ordering::Relaxed),
        }
    }
}

/// "; N more not logged", or nothing when N is 0.
fn not_logged(suppressed: u64) -> String {
    if suppressed > 0 {
        format!("; {suppressed} more not logged")
    } else {
        String::new()
    }
}

fn u32_of(data: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(data.try_into().ok()?))
}

/// Serves one exit of vCPU `vcpu`.
pub fn handle<W: std::io::Write + Send>(
    exit: VcpuExit<'_>,
    vcpu: usize,
    console: &Console<W>,
    unclaimed: &Unclaimed,
    devices: &Devices,
) -> Action {
    match exit {
        VcpuExit::IoOut(PORT_CONSOLE, data) => match console.write(vcpu, data) {
            Ok(()) => Action::Resume,
            Err(e) => Action::ConsoleBudget(e.limit),
        },
        VcpuExit::IoOut(PORT_CONSOLE_WRITE, _) => Action::ConsoleWrite,
        VcpuExit::IoOut(PORT_EXIT, data) if data.len() == 4 => {
            Action::Exit(u32_of(data).unwrap_or(0))
        }
        VcpuExit::IoOut(PORT_EXIT_REASON, data) if data.len() == 4 => {
            Action::ExitWithReason(u32_of(data).unwrap_or(0))
        }
        VcpuExit::IoOut(PORT_WAIT, data) if data.len() == 4 => {
            Action::Wait(u32_of(data).unwrap_or(0))
        }
        VcpuExit::IoOut(port, data) => {
            unclaimed.note(
                &unclaimed.port_writes,
                "port write",
                u64::from(port),
                data.len(),
            );
            Action::Resume
        }
        VcpuExit::IoIn(port, data) => {
            data.fill(0xff);
            unclaimed.note(
                &unclaimed.port_reads,
                "port read",
                u64::from(port),
                data.len(),
            );
            Action::Resume
        }
        VcpuExit::MmioWrite(addr, data) if devices.write(addr, data) => Action::Resume,
        VcpuExit::MmioRead(addr, data) => {
            if devices.read(addr, data) {
                return Action::Resume;
            }
            data.fill(0xff);
            unclaimed.note(&unclaimed.mmio_reads, "MMIO read", addr, data.len());
            Action::Resume
        }
        VcpuExit::MmioWrite(addr, data) => {
            unclaimed.note(&unclaimed.mmio_writes, "MMIO write", addr, data.len());
            Action::Resume
        }
        VcpuExit::Shutdown => Action::Shutdown,
        VcpuExit::FailEntry(reason, _cpu) => Action::FailEntry(reason),
        VcpuExit::InternalError => Action::InternalError,
        _ => Action::Unhandled,
    }
}
