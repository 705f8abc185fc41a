//! Reads and writes the target device's config space past the config cordon exposes for its kind
//! (block 60 bytes, console 12, rng none): at the first byte past it, at
//! 0x100, 0x7f8 and 0xef8 (the last 8 bytes of the 4 KiB window), with
//! 1-, 2-, 4- and 8-byte accesses, printing each value read; then writes
//! all ones there and, for block and console, over a read-only field
//! (capacity, cols) and reads that field again.
//!
//! See `virtq-kit` for the choice of device and the frame around the
//! attack.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::mmio::reg::CONFIG;
use guest_virtio::mmio::Mmio;
use guest_virtio::VirtioError;
use virtq_kit::{Kind, Session};

const NAME: &str = "virtq-config-oob";

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    virtq_kit::run(NAME, boot, attack)
}

fn attack(s: &mut Session) -> Result<(), VirtioError> {
    let regs = s.transport.regs();
    let kind = s.target.kind;
    let offsets = [kind.config_size(), 0x100, 0x7f8, 0xef8];
    for offset in offsets {
        for width in [1u64, 2, 4, 8] {
            let at = offset.next_multiple_of(width);
            let value = read(&regs, at, width);
            println!("{NAME}: read{} at config+{at:#x} -> {value:#x}", width * 8);
        }
    }
    for offset in offsets {
        regs.write8(CONFIG + offset, u8::MAX);
        regs.write32(CONFIG + offset.next_multiple_of(4), u32::MAX);
        regs.write64(CONFIG + offset.next_multiple_of(8), u64::MAX);
        println!("{NAME}: wrote all ones at config+{offset:#x} (8, 32 and 64 bits)");
    }
    let read_only = match kind {
        Kind::Block => Some(("capacity", 0, 8)),
        Kind::Console => Some(("cols", 0, 2)),
        Kind::Rng => None,
    };
    if let Some((field, at, width)) = read_only {
        let before = read(&regs, at, width);
        regs.write32(CONFIG + at, u32::MAX);
        let after = read(&regs, at, width);
        let kept = if before == after {
            "unchanged"
        } else {
            "CHANGED"
        };
        println!(
            "{NAME}: wrote all ones over {field}: {before:#x} before, {after:#x} after ({kept})"
        );
    }
    Ok(())
}

/// A config read of `width` bytes at `at` (past the header's 0x100).
fn read(regs: &Mmio, at: u64, width: u64) -> u64 {
    let at = CONFIG + at;
    match width {
        1 => regs.read8(at).into(),
        2 => regs.read16(at).into(),
        4 => regs.read32(at).into(),
        _ => regs.read64(at),
    }
}

guest_rt::entry!(main);
