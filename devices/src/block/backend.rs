//! The vhost-user glue: `VhostUserBackendMut` for vhost-user-backend's
//! daemon, run by `serve`. Everything a request does lives in `queue`; this
//! file only hands it the vring and signals the guest.

use std::io;
use std::sync::Arc;

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic};
use vmm_sys_util::epoll::EventSet;

use super::config::{config_space, device_features, read_config, CONFIG_SIZE, QUEUE_SIZE};
use super::disk::Disk;
use super::inflight::NoInflight;
use super::queue::process_queue;
use crate::serve::queue::{guest_warn, signal, Mem};
use crate::serve::{stop_worker, Device};

/// The request queue's index, which is also its event id.
const REQUEST_QUEUE: u16 = 0;

/// One connection's worth of device state over a shared `Disk`.
pub struct BlockBackend {
    disk: Arc<Disk>,
    config: [u8; CONFIG_SIZE],
    mem: Option<GuestMemoryAtomic<Mem>>,
}

impl BlockBackend {
    pub fn new(disk: Arc<Disk>) -> BlockBackend {
        let config = config_space(&disk);
        BlockBackend {
            disk,
            config,
            mem: None,
        }
    }

    fn process(&mut self, vring: &VringRwLock) {
        let Some(mem) = &self.mem else { return };
        let mem = mem.memory();
        let mut state = vring.get_mut();
        let queue = state.get_queue_mut();
        let notify = process_queue(queue, &mem, &self.disk, &mut NoInflight).unwrap_or_else(|e| {
            guest_warn(format_args!("block: request queue: {e}"));
            true
        });
        if notify {
            signal(&state);
        }
    }
}

impl Device for BlockBackend {}

impl VhostUserBackendMut for BlockBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    /// One queue: requests run synchronously in the vring worker thread,
    /// so more queues would only add threads contending for one lock.
    fn num_queues(&self) -> usize {
        1
    }

    fn max_queue_size(&self) -> usize {
        usize::from(QUEUE_SIZE)
    }

    fn features(&self) -> u64 {
        device_features(&self.disk)
    }

    /// INFLIGHT_SHMFD comes with the cordon-owned request handler
    /// (README.md); vhost-user-backend answers its messages "unsupported".
    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
    }

    /// The daemon sets EVENT_IDX on each vring's queue itself; the queue
    /// code honours it through enable/needs_notification.
    fn set_event_idx(&mut self, _enabled: bool) {}

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        read_config(&self.config, offset, size)
    }

    /// Nothing in virtio_blk_config is writable without VIRTIO_BLK_F_CONFIG_WCE.
    fn set_config(&mut self, _offset: u32, _buf: &[u8]) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    }

    fn update_memory(&mut self, mem: GuestMemoryAtomic<Mem>) -> io::Result<()> {
        self.mem = Some(mem);
        Ok(())
    }

    /// Guest mistakes are logged and swallowed; an error ends the worker,
    /// which only `serve`'s stop event (and unknown events) should do.
    fn handle_event(
        &mut self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        match (device_event, vrings.first()) {
            (REQUEST_QUEUE, Some(vring)) => {
                self.process(vring);
                Ok(())
            }
            _ => Err(stop_worker(device_event)),
        }
    }
}
