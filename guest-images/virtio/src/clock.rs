//! Time from the TSC, for deadlines while polling a device.

use core::sync::atomic::{AtomicU64, Ordering};

/// TSC ticks per millisecond (the boot info's `tsc_khz`).
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Assumed when the host could not tell the TSC frequency: lower than any
/// x86_64 TSC, so deadlines come late rather than early.
const FALLBACK_KHZ: u64 = 1_000_000;

pub(crate) fn init(tsc_khz: u64) {
    let khz = if tsc_khz == 0 { FALLBACK_KHZ } else { tsc_khz };
    TSC_KHZ.store(khz, Ordering::Relaxed);
}

fn khz() -> u64 {
    match TSC_KHZ.load(Ordering::Relaxed) {
        0 => FALLBACK_KHZ,
        khz => khz,
    }
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads the time-stamp counter; Guest ABI v1 does not
    // set CR4.TSD, so it is allowed at CPL3 and has no other effect.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// Microseconds since an arbitrary start.
pub fn now_us() -> u64 {
    (u128::from(rdtsc()) * 1000 / u128::from(khz())) as u64
}

/// A point in time to give up at, or never.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Option<u64>);

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Deadline {
        Deadline(Some(now_us().saturating_add(ms.saturating_mul(1000))))
    }

    /// No deadline.
    pub const fn never() -> Deadline {
        Deadline(None)
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.0.is_some_and(|at| now_us() >= at)
    }

    /// Microseconds left (`u32::MAX` for never), at most `cap`.
    pub fn left_us(&self, cap: u32) -> u32 {
        match self.0 {
            None => cap,
            Some(at) => at.saturating_sub(now_us()).min(u64::from(cap)) as u32,
        }
    }
}
