//! The host's TSC frequency, for the kernel command line of x86 machines.
//!
//! Under TCG the guest's TSC is the host's. A Linux guest calibrates it
//! against the emulated PIT, and under emulation that sometimes fails
//! ("tsc: Unable to calibrate against PIT", then "Marking TSC unstable"):
//! with no HPET or PM timer on microvm the kernel then hangs at "APIC:
//! Switch to symmetric I/O mode setup", in about 1 boot of 5 on this
//! 2-core host. `tsc_early_khz=` gives it the frequency instead; 0 hangs
//! in 32 boots.

use std::sync::OnceLock;

/// `tsc_early_khz=N` for this host, measured once per process.
pub fn cmdline() -> String {
    static KHZ: OnceLock<u64> = OnceLock::new();
    format!("tsc_early_khz={}", KHZ.get_or_init(measure_khz))
}

/// TSC ticks over 50 ms of the monotonic clock.
#[cfg(target_arch = "x86_64")]
fn measure_khz() -> u64 {
    use std::time::{Duration, Instant};
    // SAFETY: rdtsc reads a counter every x86_64 CPU has; no memory is touched.
    let rdtsc = || unsafe { core::arch::x86_64::_rdtsc() };
    let (start, ticks0) = (Instant::now(), rdtsc());
    std::thread::sleep(Duration::from_millis(50));
    let (elapsed, ticks) = (start.elapsed(), rdtsc() - ticks0);
    (ticks as u128 * 1_000_000 / elapsed.as_micros().max(1) / 1000) as u64
}

/// Only x86 guests read it; elsewhere the value is a placeholder.
#[cfg(not(target_arch = "x86_64"))]
fn measure_khz() -> u64 {
    1_000_000
}
