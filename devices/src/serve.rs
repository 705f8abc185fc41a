//! Serving one backend to vhost-user frontends, one connection at a time.
//!
//! Each connection gets a fresh device from the caller's factory, a fresh
//! (empty) guest memory map and a fresh `VhostUserDaemon`, so nothing of one
//! frontend (memory table, rings, acked features, pending input) reaches the
//! next. vhost-user-backend 0.24 keeps that state in its handler for the
//! daemon's whole life (`SET_OWNER` from a second frontend fails with "already
//! claimed", ring kicks stay unregistered), so a daemon is never reused.
//!
//! Stopping a connection's ring worker: the daemon's workers leave their loop
//! only on the backend's exit event, whose consumer end vhost-user-backend 0.24
//! leaks into its epoll set (one fd per daemon), or when the backend's
//! `handle_event` fails. `serve` registers an eventfd of its own as
//! [`STOP_EVENT`] with every worker and signals it once the frontend is gone;
//! every [`Device`] answers that event (and any event it does not know) with
//! an error, which ends the worker, and the daemon's drop joins it.

pub mod queue;
#[cfg(test)]
pub(crate) mod testing;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, RwLock, Weak};

use log::{info, warn};
use vhost::vhost_user::message::VhostUserVirtioFeatures;
use vhost::vhost_user::Listener;
use vhost_user_backend::{VhostUserBackendMut, VhostUserDaemon, VringEpollHandler, VringRwLock};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::{EventFd, EFD_CLOEXEC, EFD_NONBLOCK};

use crate::error::DeviceError;

/// The largest ring any backend accepts. QEMU's virtio-mmio transport
/// always asks for 1024 entries (whatever `queue-size` says), so a smaller
/// limit makes Linux behind QEMU fail to start the ring; cordon's own
/// frontend offers at most 256.
pub const MAX_QUEUE_SIZE: usize = 1024;

/// Features every backend offers: VERSION_1; EVENT_IDX, which
/// `serve::queue` honours; PROTOCOL_FEATURES, so rings start only on
/// SET_VRING_ENABLE. Each device adds its own bits.
pub const COMMON_FEATURES: u64 = 1 << VIRTIO_F_VERSION_1
    | 1 << VIRTIO_RING_F_EVENT_IDX
    | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();

/// The event id `serve` uses to stop a connection's ring workers. Ids up to
/// the number of queues are the daemon's own; backends number their extra
/// fds from `num_queues() + 1` up, below this.
pub const STOP_EVENT: u16 = u16::MAX;

/// What a device's `handle_event` returns for [`STOP_EVENT`] and for any
/// event it does not know: an error, which ends the ring worker.
pub fn stop_worker(device_event: u16) -> io::Error {
    io::Error::other(format!("worker stopped by event {device_event}"))
}

/// `size` bytes at `offset` of a device's config `space`, or nothing (the
/// vhost-user error reply) if the range does not lie inside it.
pub fn read_config(space: &[u8], offset: u32, size: u32) -> Vec<u8> {
    let start = offset as usize;
    match start.checked_add(size as usize) {
        Some(end) if end <= space.len() => space[start..end].to_vec(),
        _ => Vec::new(),
    }
}

/// Whether `serve` returns after one connection or waits for the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `cordon device KIND --socket PATH`: after a frontend disconnects,
    /// accept the next, until an error that is not the frontend's.
    Standalone,
    /// Spawned by `cordon run`: serve the one connection the supervisor set
    /// up, then return (a reconnect is a new process with fresh fds).
    Spawned,
}

/// A connection's ring worker, as a device sees it.
pub type Worker<D> = VringEpollHandler<Arc<RwLock<D>>>;

/// A backend `serve` can run: the vhost-user-backend trait plus a hook to
/// learn its ring workers (to register fds of its own with their epoll).
/// `handle_event` must return `Err(stop_worker(..))` for [`STOP_EVENT`].
pub trait Device: VhostUserBackendMut<Bitmap = (), Vring = VringRwLock> + Sized + 'static {
    /// Called once per connection, after the daemon exists and before the
    /// first frontend message. Weak: the workers own the device.
    fn connected(&mut self, _workers: Vec<Weak<Worker<Self>>>) {}
}

/// Serves devices made by `new_device` on `listener`, one frontend at a
/// time. `name` names the connection's threads. Returns when `mode` says
/// so, or on an error that is not one connection's.
pub fn serve<D, F>(
    name: &str,
    mut listener: Listener,
    mode: Mode,
    mut new_device: F,
) -> Result<(), DeviceError>
where
    D: Device,
    F: FnMut() -> Result<D, DeviceError>,
{
    // vhost-user-backend retries a would-block accept at once: a listening
    // fd handed over with O_NONBLOCK would spin.
    listener
        .set_nonblocking(false)
        .map_err(DeviceError::Accept)?;
    loop {
        let result = serve_connection(name, &mut listener, new_device()?);
        match (mode, result) {
            (Mode::Spawned, result) => return result,
            (Mode::Standalone, Ok(())) => info!("{name}: frontend disconnected"),
            (Mode::Standalone, Err(e)) if e.is_connection_only() => {
                warn!("{name}: {}", crate::error::error_chain(&e));
            }
            (Mode::Standalone, Err(e)) => return Err(e),
        }
    }
}

/// Accepts one frontend and serves it until it goes away.
fn serve_connection<D: Device>(
    name: &str,
    listener: &mut Listener,
    device: D,
) -> Result<(), DeviceError> {
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let device = Arc::new(RwLock::new(device));
    let mut daemon = VhostUserDaemon::new(name.to_owned(), device.clone(), mem)
        .map_err(DeviceError::from_daemon)?;
    let stop = EventFd::new(EFD_NONBLOCK | EFD_CLOEXEC).map_err(DeviceError::Setup)?;
    if let Err(e) = start_workers(&daemon, &device, &stop) {
        // Some worker cannot be stopped, and dropping the daemon would wait
        // for it forever; the error ends the process anyway.
        std::mem::forget(daemon);
        return Err(e);
    }
    let served = daemon.start(listener).and_then(|()| daemon.wait());
    // Stop the ring workers; dropping the daemon joins them (if the stop
    // cannot be signalled, joining would wait forever).
    match stop.write(1) {
        Ok(()) => drop(daemon),
        Err(e) => {
            std::mem::forget(daemon);
            return Err(DeviceError::Setup(e));
        }
    }
    DeviceError::from_connection(served)
}

/// Registers the stop event with every ring worker and hands the workers to
/// the device.
fn start_workers<D: Device>(
    daemon: &VhostUserDaemon<Arc<RwLock<D>>>,
    device: &RwLock<D>,
    stop: &EventFd,
) -> Result<(), DeviceError> {
    let workers = daemon.get_epoll_handlers();
    for worker in &workers {
        worker
            .register_listener(stop.as_raw_fd(), EventSet::IN, u64::from(STOP_EVENT))
            .map_err(DeviceError::Setup)?;
    }
    let weak = workers.iter().map(Arc::downgrade).collect();
    device
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .connected(weak);
    Ok(())
}
