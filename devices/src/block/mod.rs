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
mod queue;
mod request;
#[cfg(test)]
mod tests;
mod transfer;

use std::fs::File;
use std::sync::Arc;

use thiserror::Error;
use vhost::vhost_user::Listener;

pub use backend::BlockBackend;
pub use disk::{Disk, SECTOR_SIZE, SERIAL_LEN};
pub use inflight::{InflightLog, NoInflight};
pub use queue::process_queue;

use crate::error::DeviceError;
use crate::serve::{self, Mode};

/// How the block backend runs: `cordon device block --socket PATH --image
/// FILE` binds the listener and opens the image before jailing itself
/// (standalone); `cordon run` hands both over (spawned).
pub struct BlockConfig {
    pub listener: Listener,
    pub mode: Mode,
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
    #[error("serving virtio-blk")]
    Serve(#[source] DeviceError),
}

/// Serves virtio-blk on the config's listener; returns per `config.mode`.
/// Every connection gets fresh device state over the same image.
pub fn start_backend(config: BlockConfig) -> Result<(), BlockError> {
    let disk = Arc::new(Disk::new(
        config.image,
        config.read_only,
        config.serial.as_deref(),
    )?);
    serve::serve("block", config.listener, config.mode, || {
        Ok(BlockBackend::new(disk.clone()))
    })
    .map_err(BlockError::Serve)
}
