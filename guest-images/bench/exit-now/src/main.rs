//! Exits with status 0 at once: the same guest work as the benchmark floor,
//! so `cordon run` on it measures cordon's own start-up and tear-down.
#![no_std]
#![no_main]

use guest_rt::BootInfo;

fn main(_boot: &'static BootInfo, _vcpu: u64) -> u32 {
    0
}

guest_rt::entry!(main);
