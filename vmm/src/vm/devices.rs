//! The vm process's virtio devices: one 4 KiB slot each in the device
//! window, connected to their backends at boot, with KVM ioeventfds on
//! QueueNotify so queue kicks never exit to userspace.

use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use guest_abi::{VirtioMmioDevice, DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE};
use kvm_ioctls::{IoEventAddress, VmFd};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::config::DeviceSpec;
use crate::virtio::device::VirtioDevice;
use crate::virtio::mmio::QUEUE_NOTIFY_OFFSET;
use crate::virtio::vhost::{VhostDevice, VhostError};

/// Bytes of the device window each device gets.
pub const SLOT_SIZE: u64 = guest_abi::virtio_mmio::WINDOW_SIZE;

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("{name}: cannot connect to its backend")]
    Connect { name: String, source: VhostError },
    #[error("{name}: KVM refused the ioeventfd for queue {queue}")]
    IoEvent {
        name: String,
        queue: usize,
        source: kvm_ioctls::Error,
    },
    #[error("more devices than slots in the device window")]
    TooMany,
    #[error("cannot duplicate a call eventfd")]
    Dup(#[source] std::io::Error),
}

/// Every device, by slot, and the guest memory their rings live in.
pub struct Devices {
    slots: Vec<Mutex<VirtioDevice>>,
    memory: GuestMemoryMmap,
}

/// A backend's call eventfd and the slot it belongs to, for the poll loop.
pub struct CallFd {
    pub slot: usize,
    pub fd: EventFd,
}

impl Devices {
    /// Connects every device of `specs` (their sockets were inherited) and
    /// registers the ioeventfds. Returns the devices and their call fds.
    pub fn connect(
        specs: &[DeviceSpec],
        vm: &VmFd,
        memory: &GuestMemoryMmap,
        memfd: &impl AsRawFd,
    ) -> Result<(Devices, Vec<CallFd>), DevicesError> {
        if specs.len() as u64 > DEVICE_WINDOW_SIZE / SLOT_SIZE {
            return Err(DevicesError::TooMany);
        }
        let mut slots = Vec::with_capacity(specs.len());
        let mut calls = Vec::new();
        for (slot, spec) in specs.iter().enumerate() {
            // SAFETY: the supervisor passed this connected socket at this
            // number for this process alone; it is wrapped exactly once.
            let stream = unsafe { UnixStream::from_raw_fd(spec.socket_fd) };
            let name = spec.name.clone();
            let kind = spec.kind;
            let vhost =
                VhostDevice::connect(stream, kind.queues(), kind.config_size(), memory, memfd)
                    .map_err(|source| DevicesError::Connect {
                        name: name.clone(),
                        source,
                    })?;
            let notify = base(slot) + QUEUE_NOTIFY_OFFSET;
            for (queue, kick) in vhost.kicks.iter().enumerate() {
                vm.register_ioevent(kick, &IoEventAddress::Mmio(notify), queue as u32)
                    .map_err(|source| DevicesError::IoEvent {
                        name: name.clone(),
                        queue,
                        source,
                    })?;
            }
            for call in &vhost.calls {
                calls.push(CallFd {
                    slot,
                    fd: call.try_clone().map_err(DevicesError::Dup)?,
                });
            }
            slots.push(Mutex::new(VirtioDevice::new(kind, name, vhost)));
        }
        Ok((
            Devices {
                slots,
                memory: memory.clone(),
            },
            calls,
        ))
    }

    /// Takes the ioeventfds back from KVM (see `run::teardown`).
    pub fn unregister_ioevents(&self, vm: &VmFd) {
        for (slot, device) in self.slots.iter().enumerate() {
            let Ok(device) = device.lock() else { continue };
            let notify = base(slot) + QUEUE_NOTIFY_OFFSET;
            for (queue, kick) in device.kicks().iter().enumerate() {
                let addr = IoEventAddress::Mmio(notify);
                if let Err(e) = vm.unregister_ioevent(kick, &addr, queue as u32) {
                    log::debug!("cannot unregister an ioeventfd: {e}");
                }
            }
        }
    }

    /// No devices (guests without any).
    pub fn none(memory: &GuestMemoryMmap) -> Devices {
        Devices {
            slots: Vec::new(),
            memory: memory.clone(),
        }
    }

    /// The boot-info entries, in slot order.
    pub fn boot_info(&self) -> Vec<VirtioMmioDevice> {
        self.slots
            .iter()
            .enumerate()
            .map(|(slot, d)| VirtioMmioDevice {
                base: base(slot),
                size: SLOT_SIZE,
                device_id: lock(d).kind.virtio_id(),
                reserved: 0,
            })
            .collect()
    }

    fn slot(&self, addr: u64) -> Option<(&Mutex<VirtioDevice>, u64)> {
        let rel = addr.checked_sub(DEVICE_WINDOW_BASE)?;
        let device = self.slots.get(usize::try_from(rel / SLOT_SIZE).ok()?)?;
        Some((device, rel % SLOT_SIZE))
    }

    /// Serves a guest read if a device claims `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        let Some((device, offset)) = self.slot(addr) else {
            return false;
        };
        lock(device).read(offset, data);
        true
    }

    /// Serves a guest write if a device claims `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        let Some((device, offset)) = self.slot(addr) else {
            return false;
        };
        lock(device).write(offset, data, &self.memory);
        true
    }

    /// A backend signalled the call eventfd of a queue of `slot`.
    pub fn signal_used(&self, slot: usize) {
        if let Some(device) = self.slots.get(slot) {
            lock(device).signal_used();
        }
    }
}

fn base(slot: usize) -> u64 {
    DEVICE_WINDOW_BASE + slot as u64 * SLOT_SIZE
}

/// A device's lock; a vCPU that panicked holding it cannot have left the
/// register file half-written in a way that matters more than stopping.
fn lock(device: &Mutex<VirtioDevice>) -> std::sync::MutexGuard<'_, VirtioDevice> {
    device.lock().unwrap_or_else(|e| e.into_inner())
}
