//! Console writes (`PORT_CONSOLE_WRITE`) whose address and length the VMM
//! must not trust: outside guest RAM, longer than the limit, straddling the
//! end of RAM, wrapping around the address space. Each must be dropped and
//! counted; then the guest says it survived and exits 0.
#![no_std]
#![no_main]

use core::arch::asm;

use guest_rt::abi::{CONSOLE_WRITE_MAX, PORT_CONSOLE_WRITE};
use guest_rt::{println, BootInfo};

/// The console-write call with raw register values (no Rust slice could
/// describe these ranges).
fn console_write_raw(addr: u64, len: u64) {
    // SAFETY: `out` at IOPL 3 exits to the VMM, which reads guest memory
    // only if it validates the range; the guest reads no memory itself.
    unsafe {
        asm!(
            "out dx, al",
            in("dx") PORT_CONSOLE_WRITE,
            in("al") 0u8,
            in("rsi") addr,
            in("rcx") len,
            options(nomem, nostack, preserves_flags),
        )
    }
}

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let ram_end = boot.ram[0].base + boot.ram[0].size;
    console_write_raw(0xdead_0000_0000, 16);
    console_write_raw(boot.free.base, CONSOLE_WRITE_MAX + 1);
    console_write_raw(ram_end - 8, 16);
    console_write_raw(u64::MAX - 4, 16);
    console_write_raw(guest_rt::abi::DEVICE_WINDOW_BASE, 16);
    println!("bad-console-write: survived 5 bad writes");
    0
}

guest_rt::entry!(main);
