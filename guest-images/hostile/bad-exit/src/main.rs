//! Exits through `PORT_EXIT` with 4096, a status no process exit code can
//! carry (they are 0..=255): the VMM must map it, not truncate it to 0.
#![no_std]
#![no_main]

use guest_rt::abi::PORT_EXIT;
use guest_rt::{println, BootInfo};

const STATUS: u32 = 4096;

fn main(_boot: &'static BootInfo, _vcpu: u64) -> u32 {
    println!("bad-exit: exiting with {STATUS}");
    guest_rt::port::outl(PORT_EXIT, STATUS);
    // Only reached if the VMM resumed the guest after an exit.
    println!("bad-exit: still running after the exit call");
    1
}

guest_rt::entry!(main);
