//! What can go wrong talking to a virtio device.

use core::fmt;

/// A transport or virtqueue failure. After one of these the device may still
/// hold buffers, so the drivers reset it and refuse further requests
/// ([`VirtioError::Broken`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtioError {
    /// MagicValue was not "virt".
    BadMagic(u32),
    /// Version was not 2 (virtio-mmio "modern").
    BadVersion(u32),
    /// DeviceID was not the one the driver is for (0: no device).
    WrongDevice { expected: u32, found: u32 },
    /// The device did not offer VIRTIO_F_VERSION_1.
    NoVersion1 { offered: u64 },
    /// The device cleared FEATURES_OK after the driver's ack.
    FeaturesRejected { acked: u64, status: u32 },
    /// Status did not read 0 after a reset.
    ResetTimeout { status: u32 },
    /// QueueNumMax was 0: the queue does not exist.
    NoQueue(u16),
    /// The arena had no room for queue memory or buffers.
    OutOfMemory,
    /// A buffer is not in guest RAM (the device could not reach it).
    NotInRam { addr: u64, len: u64 },
    /// The chain needs more descriptors than the queue has free, or is empty.
    QueueFull { needed: usize, free: u16 },
    /// The device set DEVICE_NEEDS_RESET or FAILED (or status reads as all
    /// ones: the VMM no longer serves it).
    DeviceFailed { status: u32 },
    /// The device used a descriptor that was not a chain in flight, or moved
    /// the used index by more than the queue holds.
    BadUsed { id: u32 },
    /// The device returned nothing before the deadline.
    Timeout,
    /// An earlier failure left the device reset; it takes no more requests.
    Broken,
}

impl fmt::Display for VirtioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VirtioError::BadMagic(v) => write!(f, "bad magic {v:#x}"),
            VirtioError::BadVersion(v) => write!(f, "transport version {v}, not 2"),
            VirtioError::WrongDevice { expected, found } => {
                write!(f, "device id {found}, expected {expected}")
            }
            VirtioError::NoVersion1 { offered } => {
                write!(f, "VERSION_1 not offered (features {offered:#x})")
            }
            VirtioError::FeaturesRejected { acked, status } => {
                write!(f, "features {acked:#x} rejected (status {status:#x})")
            }
            VirtioError::ResetTimeout { status } => {
                write!(f, "reset did not complete (status {status:#x})")
            }
            VirtioError::NoQueue(q) => write!(f, "queue {q} does not exist"),
            VirtioError::OutOfMemory => write!(f, "out of memory for the device"),
            VirtioError::NotInRam { addr, len } => {
                write!(f, "buffer {addr:#x}+{len:#x} is not guest RAM")
            }
            VirtioError::QueueFull { needed, free } => {
                write!(f, "chain of {needed} descriptors, {free} free")
            }
            VirtioError::DeviceFailed { status } => {
                write!(f, "device failed (status {status:#x})")
            }
            VirtioError::BadUsed { id } => write!(f, "device used bad descriptor {id}"),
            VirtioError::Timeout => write!(f, "device did not answer in time"),
            VirtioError::Broken => write!(f, "device was reset after an earlier failure"),
        }
    }
}
