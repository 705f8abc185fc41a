//! Writes to the console forever, 4 KiB per `rep outsb`: past the console
//! budget (default 1 MiB) the sandbox must stop with the console-budget
//! code. KVM runs OUTS one byte per exit, so on kvm_pvm (~30 us an exit)
//! the default budget takes about half a minute to use up; tests pass a
//! smaller `--console-budget`.
#![no_std]
#![no_main]

use guest_rt::abi::PORT_CONSOLE;
use guest_rt::{port, BootInfo};

const LINE: &[u8; 64] = b"console-flood: this line repeats until the budget runs out ....\n";

/// One page of text.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

static PAGE: Page = Page(fill());

const fn fill() -> [u8; 4096] {
    let mut page = [0; 4096];
    let mut i = 0;
    while i < page.len() {
        page[i] = LINE[i % LINE.len()];
        i += 1;
    }
    page
}

fn main(_boot: &'static BootInfo, _vcpu: u64) -> u32 {
    loop {
        port::outsb(PORT_CONSOLE, &PAGE.0);
    }
}

guest_rt::entry!(main);
