//! The virtio-mmio devices the boot info lists.
//!
//! The table must lie inside the boot-info area and each device's window
//! inside the device window; entries that do not are skipped, so a
//! malformed boot info yields fewer devices, never a wild access.

use crate::mmio::{Mmio, WINDOW_SIZE};
use guest_abi::{
    BootInfo, VirtioMmioDevice, BOOT_INFO_SIZE, DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE,
};

/// Virtio device ids (virtio 1.2, 5).
pub mod id {
    pub const BLOCK: u32 = 2;
    pub const CONSOLE: u32 = 3;
    pub const RNG: u32 = 4;
}

/// Most devices the library reads from the table.
pub const MAX_DEVICES: usize = 64;

/// One device from the boot info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its position in the boot info's table.
    pub index: usize,
    /// Virtio device id (see [`id`]).
    pub device_id: u32,
    regs: Mmio,
}

impl Device {
    /// The device's register window.
    pub fn regs(&self) -> Mmio {
        self.regs
    }
}

/// The devices of the boot info, in its order (consoles, then disks in
/// `--disk` order, then rng).
#[derive(Clone, Copy)]
pub struct Devices {
    table: &'static [VirtioMmioDevice],
    window: (u64, u64),
}

impl Devices {
    /// The valid part of the boot info's device table.
    pub fn from_boot(boot: &'static BootInfo) -> Devices {
        let window = device_window(boot);
        Devices {
            table: table(boot).unwrap_or(&[]),
            window,
        }
    }

    /// All usable devices, in table order.
    pub fn iter(&self) -> impl Iterator<Item = Device> + '_ {
        self.table
            .iter()
            .enumerate()
            .filter_map(|(index, d)| self.check(index, d))
    }

    /// The `nth` (from 0) device with virtio id `device_id`.
    pub fn find(&self, device_id: u32, nth: usize) -> Option<Device> {
        self.iter().filter(|d| d.device_id == device_id).nth(nth)
    }

    /// Number of entries the table claims, usable or not.
    pub fn listed(&self) -> usize {
        self.table.len()
    }

    fn check(&self, index: usize, d: &VirtioMmioDevice) -> Option<Device> {
        let (start, end) = self.window;
        let size = d.size.min(WINDOW_SIZE);
        let inside = d.base >= start
            && d.base.checked_add(size).is_some_and(|e| e <= end)
            && d.base.is_multiple_of(WINDOW_SIZE)
            && size >= 0x100;
        if !inside {
            return None;
        }
        // SAFETY: the window lies inside the ABI's device window (checked
        // just above), which is mapped uncached and holds no RAM.
        let regs = unsafe { Mmio::new(d.base, size) };
        Some(Device {
            index,
            device_id: d.device_id,
            regs,
        })
    }
}

/// The device window: the boot info's, clipped to the ABI's.
fn device_window(boot: &BootInfo) -> (u64, u64) {
    let w = boot.device_window;
    let start = w.base.max(DEVICE_WINDOW_BASE);
    let end = w
        .base
        .saturating_add(w.size)
        .min(DEVICE_WINDOW_BASE + DEVICE_WINDOW_SIZE);
    (start, end.max(start))
}

/// The device table, if it lies inside the boot-info area.
fn table(boot: &'static BootInfo) -> Option<&'static [VirtioMmioDevice]> {
    let count = usize::try_from(boot.device_count).ok()?.min(MAX_DEVICES);
    let entry = core::mem::size_of::<VirtioMmioDevice>();
    let area_start = boot as *const BootInfo as u64;
    let area_size = u64::from(boot.size).min(BOOT_INFO_SIZE);
    let offset = boot.devices.checked_sub(area_start)?;
    let bytes = (count * entry) as u64;
    let aligned = boot
        .devices
        .is_multiple_of(core::mem::align_of::<VirtioMmioDevice>() as u64);
    if count == 0 || !aligned || offset.checked_add(bytes)? > area_size {
        return None;
    }
    // SAFETY: the table lies inside the boot-info area (checked above),
    // which the ABI maps readable and never changes while the guest runs;
    // it is aligned, and any bit pattern is a valid `VirtioMmioDevice`.
    Some(unsafe { core::slice::from_raw_parts(boot.devices as *const VirtioMmioDevice, count) })
}
