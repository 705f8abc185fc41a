//! Raises #UD with `ud2`. Guest ABI v1 gives the guest no IDT, so the
//! exception cannot be delivered and ends in a triple fault
//! (KVM_EXIT_SHUTDOWN). It first prints its boot counter, so restart
//! policy tests can count its boots.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    println!("triple-fault: boot {}", boot.boot_counter);
    println!("triple-fault: executing ud2 with no IDT");
    // SAFETY: `ud2` touches no memory; it raises #UD, which never returns
    // here (the VM shuts down).
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}

guest_rt::entry!(main);
