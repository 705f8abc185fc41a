//! Exit round-trip benchmark: 100,000 32-bit `out` writes to port 0x80
//! (claimed by no device, so each is one exit to the VMM and back), then
//! exit 0.
#![no_std]
#![no_main]

use guest_rt::BootInfo;

/// The POST-code port: no cordon device claims it.
const UNCLAIMED_PORT: u16 = 0x80;
const WRITES: u32 = 100_000;

fn main(_boot: &'static BootInfo, _vcpu: u64) -> u32 {
    for i in 0..WRITES {
        guest_rt::port::outl(UNCLAIMED_PORT, i);
    }
    0
}

guest_rt::entry!(main);
