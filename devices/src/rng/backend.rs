//! The rng device as a vhost-user backend.

use std::io;

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost_user_backend::{VhostUserBackendMut, VringRwLock};
use vm_memory::GuestMemoryAtomic;
use vmm_sys_util::epoll::EventSet;

use super::{getrandom, process_queue};
use crate::serve::queue::{run_queue, Mem};
use crate::serve::{stop_worker, Device};

/// The request queue's index, which is also its event id.
const REQUEST_QUEUE: u16 = 0;

/// One connection's virtio-rng device. It holds nothing but the guest
/// memory map: every request is answered as it comes.
#[derive(Default)]
pub struct RngBackend {
    mem: Option<GuestMemoryAtomic<Mem>>,
}

impl RngBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn process(&mut self, vring: &VringRwLock) {
        run_queue(
            "rng: request queue",
            self.mem.as_ref(),
            vring,
            |queue, mem| process_queue(queue, mem, getrandom),
        );
    }
}

impl Device for RngBackend {}

impl VhostUserBackendMut for RngBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        1
    }

    fn max_queue_size(&self) -> usize {
        crate::serve::MAX_QUEUE_SIZE
    }

    /// The common features; virtio-rng has no device bits.
    fn features(&self) -> u64 {
        crate::serve::COMMON_FEATURES
    }

    /// None: virtio-rng has no config space and one queue.
    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::empty()
    }

    fn set_event_idx(&mut self, _enabled: bool) {}

    fn update_memory(&mut self, mem: GuestMemoryAtomic<Mem>) -> io::Result<()> {
        self.mem = Some(mem);
        Ok(())
    }

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
