//! virtio-blk over a raw image, as a vhost-user backend
//! (`cordon device block`). The image arrives as an open `File`: the
//! backend opens no path. One queue; requests run synchronously in the
//! daemon's vring worker thread with preadv/pwritev straight into guest
//! memory.
//!
//! Layers, each usable without the one above: `request` parses a chain,
//! `execute` runs it against `disk` (via `transfer`), `queue` drains a
//! virtio-queue `Queue` and is where inflight tracking (`inflight`) hooks
//! in, `backend` is the vhost-user glue. How block gets inflight tracking,
//! and why, is in README.md next to this file.

mod backend;
mod config;
mod disk;
mod execute;
mod inflight;
mod transfer;
mod queue;
mod request;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::sync::{Arc, RwLock};

use thiserror::Error;
use vhost::vhost_user::{Error as VhostUserError, Listener};
use vhost_user_backend::{Error as DaemonError, VhostUserDaemon};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

pub use backend::BlockBackend;
pub use disk::{Disk, SECTOR_SIZE, SERIAL_LEN};
pub use inflight::{InflightLog, NoInflight};
pub use queue::process_queue;

/// What `cordon device block` is started with.
pub struct BlockConfig {
    /// The raw image, opened read-write unless `read_only`.
    pub image: File,
    /// Advertise VIRTIO_BLK_F_RO and fail every write with IOERR.
    pub read_only: bool,
    /// GET_ID's answer, at most 20 bytes; default `DEV-INO` of the image
    /// in hex.
    pub serial: Option<String>,
}

#[derive(Debug, Error)]
pub enum BlockError {
    #[error("cannot inspect the image")]
    Image(#[source] std::io::Error),
    #[error("serial is {0} bytes, at most 20 fit")]
    SerialTooLong(usize),
    #[error("cannot accept a frontend: {0}")]
    Accept(DaemonError),
    #[error("vhost-user daemon: {0}")]
    Daemon(DaemonError),
}

/// Serves frontends on `listener`, one at a time, until accepting fails.
/// A connection that ends in a protocol error is logged; the next one is
/// served with fresh device state over the same image.
pub fn start_backend(config: BlockConfig, mut listener: Listener) -> Result<(), BlockError> {
    let disk = Arc::new(Disk::new(
        config.image,
        config.read_only,
        config.serial.as_deref(),
    )?);
    loop {
        match serve_connection(&disk, &mut listener) {
            Ok(()) => log::info!("block: frontend disconnected"),
            Err(e @ BlockError::Accept(_)) => return Err(e),
            Err(e) => log::warn!("block: connection ended: {e}"),
        }
    }
}

/// Accepts one frontend on `listener` and serves it until it disconnects.
pub fn serve_connection(disk: &Arc<Disk>, listener: &mut Listener) -> Result<(), BlockError> {
    let backend = Arc::new(RwLock::new(BlockBackend::new(disk.clone())));
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let mut daemon =
        VhostUserDaemon::new("block".into(), backend, mem).map_err(BlockError::Daemon)?;
    daemon.start(listener).map_err(BlockError::Accept)?;
    // Dropping the daemon stops and joins its vring worker.
    match daemon.wait() {
        Err(DaemonError::HandleRequest(
            VhostUserError::Disconnected | VhostUserError::PartialMessage,
        )) => Ok(()),
        other => other.map_err(BlockError::Daemon),
    }
}
