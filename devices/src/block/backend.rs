//! The vhost-user glue: `VhostUserBackendMut` for vhost-user-backend's
//! daemon. Everything a request does lives in `queue`; this file only
//! hands it the vring and signals the guest.

use std::io;
use std::sync::Arc;

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use super::config::{config_space, device_features, read_config, CONFIG_SIZE, QUEUE_SIZE};
use super::disk::Disk;
use super::inflight::NoInflight;
use super::queue::{guest_warn, process_queue};

/// One connection's worth of device state over a shared `Disk`.
pub struct BlockBackend {
    disk: Arc<Disk>,
    config: [u8; CONFIG_SIZE],
    mem: Option<GuestMemoryAtomic<GuestMemoryMmap>>,
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
}

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

    fn update_memory(&mut self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        self.mem = Some(mem);
        Ok(())
    }

    /// The daemon joins the worker thread when it is dropped, so the
    /// thread must have an exit event.
    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        new_event_consumer_and_notifier(EventFlag::NONBLOCK)
            .inspect_err(|e| log::error!("block: no exit event for the worker: {e}"))
            .ok()
    }

    /// Errors returned here stop the worker thread for good, so guest
    /// mistakes are logged and swallowed.
    fn handle_event(
        &mut self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if !evset.contains(EventSet::IN) || device_event != 0 {
            return Ok(());
        }
        let (Some(mem), Some(vring)) = (&self.mem, vrings.first()) else {
            return Ok(());
        };
        let mem = mem.memory();
        let notify = {
            let mut state = vring.get_mut();
            process_queue(state.get_queue_mut(), &*mem, &self.disk, &mut NoInflight)
        };
        if notify {
            if let Err(e) = vring.signal_used_queue() {
                guest_warn(format_args!("cannot signal the used queue: {e}"));
            }
        }
        Ok(())
    }
}
