//! The guest heap: the free range from boot info, but for what the virtio
//! drivers need for rings and buffers (they take theirs from the same
//! range, through `guest_virtio::dma`).

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// What stays in the DMA arena for the virtio drivers: rings and receive
/// buffers of two consoles and an rng, with room.
const DMA_RESERVE: u64 = 1 << 20;

/// Takes the heap from the DMA arena; call after `guest_virtio::init`.
/// Returns false if there is no room at all.
pub fn init() -> bool {
    let Some((base, size)) = guest_virtio::dma::take_all_but(DMA_RESERVE) else {
        return false;
    };
    // SAFETY: the arena handed `base..base + size` (guest RAM, free per
    // Guest ABI v1) to this call alone and never hands it out again; init
    // runs once, before any allocation.
    unsafe { HEAP.lock().init(base as *mut u8, size as usize) };
    true
}

/// The prebuilt `alloc` library was compiled for unwinding and keeps
/// landing pads that name this symbol; with panic = "abort" nothing ever
/// unwinds, so it is never reached. Ends the guest if it ever were.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    guest_rt::exit(guest_rt::PANIC_EXIT_STATUS)
}
