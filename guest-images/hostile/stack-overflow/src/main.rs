//! Recurses without bound. Each frame holds a buffer the optimizer must
//! keep (it goes through `black_box`), so the stack grows until it hits the
//! unmapped guard page below it: a page fault with no IDT, so a triple
//! fault. It first prints its boot counter, so restart tests can count its
//! boots.
#![no_std]
#![no_main]

use core::hint::black_box;
use guest_rt::{println, BootInfo};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    println!("stack-overflow: boot {}", boot.boot_counter);
    println!("stack-overflow: recursing into the guard page");
    let depth = recurse(black_box(0));
    println!("stack-overflow: recursion returned {depth}");
    1
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth as u8; 256];
    black_box(&mut frame);
    // `black_box` hides the condition, so the recursion cannot be proven
    // endless (nor removed), yet it never ends.
    if black_box(depth) == u64::MAX {
        return depth;
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[depth as usize % 256]))
}

guest_rt::entry!(main);
