//! Prints a greeting, its vCPU index, boot counter, argv and environment,
//! then exits with argv[1] read as a decimal number (0 if there is none).
//! With several vCPUs, the others print one line each and wait forever;
//! vCPU 0 waits until all of them have checked in before it goes on.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use guest_rt::abi::WAIT_FOREVER;
use guest_rt::{boot, console, println, BootInfo};

/// vCPUs other than 0 that have printed their line.
static CHECKED_IN: AtomicU32 = AtomicU32::new(0);

fn main(boot: &'static BootInfo, vcpu: u64) -> u32 {
    if vcpu != 0 {
        println!("hello: vCPU {vcpu} is up");
        CHECKED_IN.fetch_add(1, Ordering::Release);
        loop {
            guest_rt::wait(WAIT_FOREVER);
        }
    }
    while CHECKED_IN.load(Ordering::Acquire) + 1 < boot.vcpu_count {
        guest_rt::wait(1000);
    }
    println!("Hello from a cordon guest!");
    println!(
        "vcpu = {vcpu} of {}, boot counter = {}",
        boot.vcpu_count, boot.boot_counter
    );
    let argv = boot::argv(boot);
    for (i, arg) in argv.iter().enumerate() {
        print_entry("argv", i, arg);
    }
    for (i, var) in boot::env(boot).iter().enumerate() {
        print_entry("env", i, var);
    }
    argv.get(1).and_then(parse_decimal).unwrap_or(0)
}

/// Prints `name[index] = value`, the value as the raw bytes it is.
fn print_entry(name: &str, index: usize, value: &[u8]) {
    guest_rt::print!("{name}[{index}] = ");
    console::write(value);
    console::write(b"\n");
}

/// `text` as a decimal u32, if it is one.
fn parse_decimal(text: &[u8]) -> Option<u32> {
    core::str::from_utf8(text).ok()?.parse().ok()
}

guest_rt::entry!(main);
