//! The vm process's virtio devices: one 4 KiB slot each in the device
//! window, connected to their backends at boot.
//!
//! A queue's kicks (QueueNotify writes) first exit to userspace, where the
//! vm process passes them on (~25 us each on kvm_pvm). After
//! `REGISTER_AFTER` of them the queue gets a KVM ioeventfd, and later kicks
//! never leave the kernel. An ioeventfd is not free: registering it and
//! taking it back at the end each wait for an SRCU grace period (~1-1.5 ms
//! each here), so a short-lived sandbox that kicks a queue a few times
//! (`hello.wasm`) is faster without one, and a busy queue gets one early.

use std::fs::File;
use std::os::fd::FromRawFd;
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

/// Kicks of one queue handled in userspace before it gets an ioeventfd.
const REGISTER_AFTER: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("{name}: cannot connect to its backend")]
    Connect { name: String, source: VhostError },
    #[error("more devices than slots in the device window")]
    TooMany,
    #[error("cannot duplicate a call eventfd or the memory fd")]
    Dup(#[source] std::io::Error),
    #[error("no device in slot {0}")]
    NoSlot(usize),
}

/// Every device, by slot, and the guest memory their rings live in.
pub struct Devices {
    slots: Vec<Mutex<VirtioDevice>>,
    memory: GuestMemoryMmap,
    /// The guest memory's memfd, for a restarted backend's memory table
    /// (none without devices).
    memfd: Option<File>,
    /// A second handle on the VM, for registering ioeventfds (none without
    /// devices).
    vm: Option<VmFd>,
    /// Per slot and queue: kicks seen in userspace, and whether the queue's
    /// ioeventfd is registered.
    kicks: Vec<Mutex<Vec<QueueKicks>>>,
}

#[derive(Clone, Copy, Default)]
struct QueueKicks {
    seen: u32,
    registered: bool,
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
        vm: VmFd,
        memory: &GuestMemoryMmap,
        memfd: &File,
    ) -> Result<(Devices, Vec<CallFd>), DevicesError> {
        if specs.len() as u64 > DEVICE_WINDOW_SIZE / SLOT_SIZE {
            return Err(DevicesError::TooMany);
        }
        let mut slots = Vec::with_capacity(specs.len());
        let mut kicks = Vec::with_capacity(specs.len());
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
            for call in &vhost.calls {
                calls.push(CallFd {
                    slot,
                    fd: call.try_clone().map_err(DevicesError::Dup)?,
                });
            }
            kicks.push(Mutex::new(vec![QueueKicks::default(); vhost.kicks.len()]));
            slots.push(Mutex::new(VirtioDevice::new(kind, name, vhost)));
        }
        Ok((
            Devices {
                slots,
                memory: memory.clone(),
                memfd: Some(memfd.try_clone().map_err(DevicesError::Dup)?),
                vm: Some(vm),
                kicks,
            },
            calls,
        ))
    }

    /// Takes the registered ioeventfds back from KVM (see `run::teardown`).
    pub fn unregister_ioevents(&self) {
        let Some(vm) = &self.vm else { return };
        for (slot, device) in self.slots.iter().enumerate() {
            let device = lock(device);
            let queues = lock(&self.kicks[slot]);
            let addr = notify_address(slot);
            for (queue, kick) in device.kicks().iter().enumerate() {
                if !queues.get(queue).is_some_and(|q| q.registered) {
                    continue;
                }
                if let Err(e) = vm.unregister_ioevent(kick, &addr, queue as u32) {
                    log::debug!("cannot unregister an ioeventfd: {e}");
                }
            }
        }
    }

    /// Counts a kick of `queue` of `slot` seen in userspace; the
    /// `REGISTER_AFTER`th gives the queue its ioeventfd. A failed
    /// registration is logged and the queue stays in userspace until the
    /// next try, `REGISTER_AFTER` kicks later.
    fn kicked(&self, slot: usize, queue: u32, device: &VirtioDevice) {
        let (Some(vm), Some(queues)) = (&self.vm, self.kicks.get(slot)) else {
            return;
        };
        let mut queues = lock(queues);
        let Some(q) = queues.get_mut(queue as usize) else {
            return;
        };
        q.seen = q.seen.saturating_add(1);
        if q.registered || q.seen < REGISTER_AFTER {
            return;
        }
        let Some(kick) = device.kicks().get(queue as usize) else {
            return;
        };
        let addr = notify_address(slot);
        match vm.register_ioevent(kick, &addr, queue) {
            Ok(()) => q.registered = true,
            Err(e) => {
                // The queue keeps working in userspace; another try comes
                // after another REGISTER_AFTER kicks.
                q.seen = 0;
                log::warn!(
                    "{}: KVM refused the ioeventfd for queue {queue}: {e}",
                    device.name
                );
            }
        }
    }

    /// No devices (guests without any).
    pub fn none(memory: &GuestMemoryMmap) -> Devices {
        Devices {
            slots: Vec::new(),
            memory: memory.clone(),
            memfd: None,
            vm: None,
            kicks: Vec::new(),
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
        self.slot_index(addr).map(|(i, off)| (&self.slots[i], off))
    }

    fn slot_index(&self, addr: u64) -> Option<(usize, u64)> {
        let rel = addr.checked_sub(DEVICE_WINDOW_BASE)?;
        let index = usize::try_from(rel / SLOT_SIZE).ok()?;
        (index < self.slots.len()).then_some((index, rel % SLOT_SIZE))
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
        let Some((slot, offset)) = self.slot_index(addr) else {
            return false;
        };
        let mut device = lock(&self.slots[slot]);
        device.write(offset, data, &self.memory);
        if offset == QUEUE_NOTIFY_OFFSET {
            if let Ok(queue) = <[u8; 4]>::try_from(data).map(u32::from_le_bytes) {
                self.kicked(slot, queue, &device);
            }
        }
        true
    }

    /// Resets every device as a guest writing 0 to its Status register
    /// would: each backend stops its rings (GET_VRING_BASE) before the
    /// guest's memory is loaded again (`reset-vcpu`).
    pub fn reset_all(&self) {
        for slot in &self.slots {
            lock(slot).write(
                guest_abi::virtio_mmio::reg::STATUS,
                &0u32.to_le_bytes(),
                &self.memory,
            );
        }
    }

    /// The backend of `slot` was restarted and is on `stream`: connects
    /// and replays (`VirtioDevice::reconnect`).
    pub fn reconnect(&self, slot: usize, stream: UnixStream) -> Result<(), DevicesError> {
        let (Some(device), Some(memfd)) = (self.slots.get(slot), &self.memfd) else {
            return Err(DevicesError::NoSlot(slot));
        };
        let mut device = lock(device);
        device
            .reconnect(stream, &self.memory, memfd)
            .map_err(|source| DevicesError::Connect {
                name: device.name.clone(),
                source,
            })
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

/// Where a queue's ioeventfd of `slot` listens: its QueueNotify register.
fn notify_address(slot: usize) -> IoEventAddress {
    IoEventAddress::Mmio(base(slot) + QUEUE_NOTIFY_OFFSET)
}

/// A device's lock; a vCPU that panicked holding it cannot have left the
/// register file half-written in a way that matters more than stopping.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
