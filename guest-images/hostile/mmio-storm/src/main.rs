//! Reads and writes the first word of every 4 KiB page of the device
//! window, one MMIO exit each, then prints how many and exits 0. The VMM
//! must survive accesses to slots with no device and to registers of the
//! devices it has.
#![no_std]
#![no_main]

use core::ptr;
use guest_rt::abi::{DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE, PAGE_SIZE};
use guest_rt::{println, BootInfo};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let window = boot.device_window;
    let (base, size) = match window.size {
        0 => (DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE),
        _ => (window.base, window.size),
    };
    println!("mmio-storm: {size:#x} bytes of device window at {base:#x}");
    let (mut reads, mut writes) = (0u64, 0u64);
    let mut checksum = 0u32;
    for page in (base..base + size).step_by(PAGE_SIZE as usize) {
        let word = page as *mut u32;
        // SAFETY: Guest ABI v1 maps the whole device window, uncached and
        // user-accessible; it is not RAM the guest uses, so a volatile
        // aligned access only exits to the VMM.
        unsafe {
            checksum = checksum.wrapping_add(ptr::read_volatile(word));
            ptr::write_volatile(word, 0);
        }
        reads += 1;
        writes += 1;
    }
    println!("mmio-storm: {reads} reads and {writes} writes (reads summed {checksum:#x})");
    0
}

guest_rt::entry!(main);
