//! Spins forever without a single exit: only a host-side timeout (or a
//! signal to the vCPU thread) stops it. It first prints its boot counter,
//! so restart tests can count its boots.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    println!("spin: boot {}", boot.boot_counter);
    println!("spin: looping forever without exits");
    loop {
        core::hint::spin_loop();
    }
}

guest_rt::entry!(main);
