//! The guest heap: the free range from boot info.

use guest_rt::BootInfo;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub fn init(boot: &'static BootInfo) {
    // SAFETY: Guest ABI v1 gives the guest the free range to use as it
    // likes; nothing else refers to it; init is called once.
    unsafe {
        HEAP.lock()
            .init(boot.free.base as *mut u8, boot.free.size as usize)
    };
}

/// The prebuilt `alloc` library was compiled for unwinding and keeps
/// landing pads that name this symbol; with panic = "abort" nothing ever
/// unwinds, so it is never reached. Ends the guest if it ever were.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    guest_rt::exit(guest_rt::PANIC_EXIT_STATUS)
}
