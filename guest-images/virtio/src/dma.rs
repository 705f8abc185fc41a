//! Memory the device shares: a bump allocator over the boot info's `free`
//! range, and a check that a buffer lies in guest RAM.
//!
//! Every byte of guest RAM is shared with the device processes (they map
//! the whole memfd), so any buffer in RAM can be handed to a device; this
//! arena exists for memory that must outlive a call (rings, request
//! headers, receive buffers) and for large buffers. Nothing is ever freed.

use core::sync::atomic::{AtomicU64, Ordering};

/// Next free address and the end of the arena (0, 0 until `init`).
static NEXT: AtomicU64 = AtomicU64::new(0);
static END: AtomicU64 = AtomicU64::new(0);
/// Guest RAM ranges, as (start, end) pairs; empty ones are (0, 0).
static RAM: [[AtomicU64; 2]; 2] = [
    [AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0)],
];

/// Carves `size` bytes aligned to `align` (a power of two) from
/// `next..end`: the block's start and the new `next`.
pub const fn carve(next: u64, end: u64, size: u64, align: u64) -> Option<(u64, u64)> {
    let start = match next.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => return None,
    };
    match start.checked_add(size) {
        Some(stop) if stop <= end => Some((start, stop)),
        _ => None,
    }
}

/// Whether `addr..addr + len` lies inside one of `ranges` (start, end).
pub fn range_inside(ranges: &[(u64, u64)], addr: u64, len: u64) -> bool {
    let Some(stop) = addr.checked_add(len) else {
        return false;
    };
    ranges
        .iter()
        .any(|&(start, end)| start < end && start <= addr && stop <= end)
}

/// Takes the arena and RAM ranges from the boot info. Later calls (several
/// vCPUs, or the library initialised twice) leave the arena as it is.
#[cfg(feature = "rt")]
pub(crate) fn init(boot: &guest_abi::BootInfo) {
    let ram_count = (boot.ram_count as usize).min(boot.ram.len());
    for (slot, range) in RAM.iter().zip(&boot.ram[..ram_count]) {
        slot[0].store(range.base, Ordering::Relaxed);
        slot[1].store(range.base.saturating_add(range.size), Ordering::Relaxed);
    }
    let free = boot.free;
    let end = free.base.saturating_add(free.size);
    if range_inside(&ram(), free.base, free.size)
        && NEXT
            .compare_exchange(0, free.base, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        END.store(end, Ordering::Release);
    }
}

fn ram() -> [(u64, u64); 2] {
    RAM.each_ref()
        .map(|r| (r[0].load(Ordering::Relaxed), r[1].load(Ordering::Relaxed)))
}

/// Whether the `len` bytes at `addr` are guest RAM (so a device can reach
/// them).
pub fn in_ram(addr: u64, len: u64) -> bool {
    range_inside(&ram(), addr, len)
}

/// The first address past guest RAM (the end of its highest range).
pub fn ram_end() -> u64 {
    ram().iter().map(|&(_, end)| end).max().unwrap_or(0)
}

/// Allocates `size` zeroed bytes aligned to `align` (a power of two) from
/// the arena; returns the address, or `None` when the arena is exhausted
/// (or was never initialised). The block is the caller's alone: the arena
/// hands out each byte once.
#[cfg(feature = "rt")]
pub fn alloc_zeroed(size: u64, align: u64) -> Option<u64> {
    let mut next = NEXT.load(Ordering::Acquire);
    loop {
        let (start, stop) = carve(next, END.load(Ordering::Acquire), size, align)?;
        match NEXT.compare_exchange_weak(next, stop, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // SAFETY: `start..stop` lies in the boot info's `free` range,
                // RAM the ABI gives the guest (checked in `init`), and the
                // compare-exchange gave it to this call alone; no Rust
                // reference to it exists yet.
                unsafe { core::ptr::write_bytes(start as *mut u8, 0, size as usize) };
                return Some(start);
            }
            Err(current) => next = current,
        }
    }
}

/// Takes all of the arena but its last `keep` bytes, page-aligned, without
/// touching them (fresh guest memory reads as zero; no page is faulted in):
/// for a heap that shares the free range with the arena. Returns the
/// block's start and size, or `None` if less than `keep` is left.
#[cfg(feature = "rt")]
pub fn take_all_but(keep: u64) -> Option<(u64, u64)> {
    let mut next = NEXT.load(Ordering::Acquire);
    loop {
        let end = END.load(Ordering::Acquire);
        let start = next.checked_add(guest_abi::PAGE_SIZE - 1)? & !(guest_abi::PAGE_SIZE - 1);
        let stop = end.checked_sub(keep)? & !(guest_abi::PAGE_SIZE - 1);
        if stop <= start {
            return None;
        }
        match NEXT.compare_exchange_weak(next, stop, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some((start, stop - start)),
            Err(current) => next = current,
        }
    }
}

/// A zeroed, page-aligned buffer of `len` bytes from the arena, for data a
/// device reads or writes (block transfers, random bytes).
#[cfg(feature = "rt")]
pub fn alloc_buffer(len: usize) -> Option<&'static mut [u8]> {
    let addr = alloc_zeroed(len as u64, guest_abi::PAGE_SIZE)?;
    // SAFETY: `alloc_zeroed` handed these `len` initialised bytes to us
    // alone and never hands them out again, so a unique 'static borrow
    // holds; a device touches them only while a request we submit with
    // them is in flight, which the drivers wait out.
    Some(unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) })
}

/// Bytes left in the arena.
pub fn remaining() -> u64 {
    END.load(Ordering::Acquire)
        .saturating_sub(NEXT.load(Ordering::Acquire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_aligns_and_bounds() {
        assert_eq!(
            carve(0x1001, 0x3000, 0x1000, 0x1000),
            Some((0x2000, 0x3000))
        );
        assert_eq!(carve(0x1001, 0x3000, 0x1001, 0x1000), None);
        assert_eq!(carve(0x10, 0x20, 0, 16), Some((0x10, 0x10)));
        assert_eq!(carve(u64::MAX - 2, u64::MAX, 1, 16), None);
        assert_eq!(carve(0, u64::MAX, u64::MAX, 1), Some((0, u64::MAX)));
    }

    #[test]
    fn ranges_must_contain_the_whole_buffer() {
        let ram = [(0x10_0000, 0x400_0000), (0, 0)];
        assert!(range_inside(&ram, 0x10_0000, 16));
        assert!(range_inside(&ram, 0x3ff_fff0, 16));
        assert!(!range_inside(&ram, 0x3ff_fff1, 16));
        assert!(!range_inside(&ram, 0xf_fff0, 32));
        assert!(!range_inside(&ram, u64::MAX, 2));
        assert!(!range_inside(&ram, 0, 0), "the empty range is no RAM");
    }
}
