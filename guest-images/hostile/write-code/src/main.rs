//! Writes to its own code. Guest ABI v1 maps code read-only, so the store
//! page-faults and, with no IDT, triple-faults. If it goes through, the
//! guest says so and exits with 1.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};

fn main(_boot: &'static BootInfo, _vcpu: u64) -> u32 {
    println!("write-code: writing to .text");
    // SAFETY: the store targets the `nop` right after it, in .text. If the
    // page is writable it rewrites that `nop` with the same byte, so the
    // code is unchanged; if it is read-only the guest faults and stops.
    unsafe {
        core::arch::asm!(
            "lea {p}, [rip + 2f]",
            "mov byte ptr [{p}], 0x90",
            "2: nop",
            p = out(reg) _,
            options(nostack, preserves_flags),
        );
    }
    println!("write-code: the write to .text went through");
    1
}

guest_rt::entry!(main);
