//! Loads an x87 value from the device window. KVM's instruction emulator
//! has no x87 loads (KVM's own selftest for KVM_CAP_EXIT_ON_EMULATION_FAILURE
//! uses `flds` on MMIO for this reason), so the MMIO access cannot be
//! completed and KVM_RUN ends with KVM_EXIT_INTERNAL_ERROR (suberror 1,
//! emulation). On kvm_pvm that happens at CPL3 as it is; on VMX/SVM a CPL3
//! emulation failure becomes #UD (here a triple fault) unless the VMM
//! enables KVM_CAP_EXIT_ON_EMULATION_FAILURE. It first prints its boot
//! counter, so restart policy tests can count its boots.
#![no_std]
#![no_main]

use guest_rt::abi::{DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE, PAGE_SIZE};
use guest_rt::{println, BootInfo};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    println!("emulation-failure: boot {}", boot.boot_counter);
    // The last slot of the window: MMIO that no device claims.
    let target = DEVICE_WINDOW_BASE + DEVICE_WINDOW_SIZE - PAGE_SIZE;
    println!("emulation-failure: x87 load from MMIO at {target:#x}");
    // SAFETY: reads 8 bytes of the device window (mapped, not RAM) into the
    // x87 stack and pops them again, leaving the x87 state as it was.
    unsafe {
        core::arch::asm!(
            "fld qword ptr [{0}]",
            "fstp st(0)",
            in(reg) target,
            options(nostack, readonly),
        );
    }
    println!("emulation-failure: KVM emulated the load; still running");
    1
}

guest_rt::entry!(main);
