//! A virtio-mmio register window (virtio 1.2, 4.2.2) and its raw accesses.
//!
//! Each access exits to the VMM (about 25 us on kvm_pvm), except QueueNotify
//! writes, which a KVM ioeventfd sends straight to the device (about 2.5 us):
//! drivers read a register only when they must.

use core::ptr;

pub use guest_abi::virtio_mmio::{reg, status, MAGIC, VERSION_2, WINDOW_SIZE};

/// One device's register window: `size` bytes at `base`, inside the ABI's
/// device window (checked by [`crate::Devices`], the only maker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    base: u64,
    size: u64,
}

macro_rules! access {
    ($read:ident, $write:ident, $ty:ty) => {
        /// Reads the register at `offset`; all ones if the access would
        /// leave the window.
        pub fn $read(&self, offset: u64) -> $ty {
            match self.addr(offset, core::mem::size_of::<$ty>() as u64) {
                // SAFETY: `addr` keeps the access inside this device's
                // register window, which the ABI maps uncached and
                // user-accessible and which is no RAM: the access exits to
                // the VMM and touches no memory Rust knows about.
                Some(a) => unsafe { ptr::read_volatile(a as *const $ty) },
                None => <$ty>::MAX,
            }
        }

        /// Writes the register at `offset`; dropped if the access would
        /// leave the window.
        pub fn $write(&self, offset: u64, value: $ty) {
            if let Some(a) = self.addr(offset, core::mem::size_of::<$ty>() as u64) {
                // SAFETY: as for the read: inside this device's register
                // window, an exit to the VMM, no RAM.
                unsafe { ptr::write_volatile(a as *mut $ty, value) }
            }
        }
    };
}

impl Mmio {
    /// # Safety
    /// `base..base + size` must be a virtio-mmio register window in the
    /// ABI's device window (mapped, uncached, no RAM).
    pub(crate) const unsafe fn new(base: u64, size: u64) -> Mmio {
        Mmio { base, size }
    }

    /// Base address of the window.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Bytes in the window.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Address of an access of `width` bytes at `offset`, if it stays
    /// inside the window and is naturally aligned (x86 would allow an
    /// unaligned one, but it could cross into the next device's window).
    fn addr(&self, offset: u64, width: u64) -> Option<u64> {
        let end = offset.checked_add(width)?;
        (end <= self.size && offset.is_multiple_of(width)).then(|| self.base + offset)
    }

    access!(read8, write8, u8);
    access!(read16, write16, u16);
    access!(read32, write32, u32);
    access!(read64, write64, u64);
}
