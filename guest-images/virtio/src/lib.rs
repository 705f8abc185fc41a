//! Polling virtio-mmio (version 2) drivers for cordon's guests (Guest ABI
//! v1): device probing from the boot info, the transport's init sequence, a
//! split virtqueue, and console, block and rng drivers.
//!
//! ```ignore
//! let devices = guest_virtio::init(boot);
//! let disk = devices.find(guest_virtio::id::BLOCK, 0).ok_or(..)?;
//! let mut disk = guest_virtio::Block::new(&disk)?;
//! disk.read(0, &mut sector)?;
//! ```
//!
//! There are no interrupts: a driver publishes requests with one QueueNotify
//! (an ioeventfd, no exit to the VMM), then polls the used ring and blocks
//! in the ABI's wait call while nothing is there; a device signal ends the
//! wait. Register accesses exit to the VMM, so the drivers make few.
//! The APIs are blocking and safe: a call returns once the device has
//! finished with every buffer it was given, or after the device was reset.
//!
//! Queue memory comes from a bump arena over the boot info's `free` range
//! ([`dma`]); data buffers may be anywhere in guest RAM.
#![cfg_attr(not(test), no_std)]

pub mod blk_proto;
pub mod dma;
pub mod ring;

#[cfg(feature = "rt")]
mod blk;
#[cfg(feature = "rt")]
pub mod clock;
#[cfg(feature = "rt")]
mod console;
#[cfg(feature = "rt")]
mod error;
#[cfg(feature = "rt")]
pub mod mmio;
#[cfg(feature = "rt")]
mod probe;
#[cfg(feature = "rt")]
pub mod queue;
#[cfg(feature = "rt")]
mod rng;
#[cfg(feature = "rt")]
pub mod transport;

#[cfg(feature = "rt")]
pub use {
    blk::{BlkError, Block},
    console::Console,
    error::VirtioError,
    probe::{id, Device, Devices},
    queue::{Segment, Used, Virtqueue},
    rng::Rng,
    transport::{feature, Transport},
};

/// Sets up the library from the boot info (the DMA arena, the clock) and
/// returns the devices it lists. Call it once, before any driver.
#[cfg(feature = "rt")]
pub fn init(boot: &'static guest_abi::BootInfo) -> Devices {
    clock::init(boot.tsc_khz);
    dma::init(boot);
    Devices::from_boot(boot)
}
