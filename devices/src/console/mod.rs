//! virtio-console, without MULTIPORT: one device per stream. Under
//! `cordon run` one console process serves two devices, each on its own
//! listener and thread: device 0 carries the guest's stdout (its transmitq)
//! and the host's stdin (its receiveq), device 1 the guest's stderr.
//! Standalone, `cordon device console --socket PATH` serves one device on
//! PATH that writes to the process's stdout and reads its stdin.
//!
//! Backpressure, both ways, instead of buffers that grow:
//! - guest output is written with blocking writes from the ring handler:
//!   a full pipe stalls the transmitq and so the guest;
//! - host input is read only when the guest has posted a receive buffer,
//!   one read at a time (at most [`INPUT_CHUNK`] bytes held): the input fd
//!   is watched by the ring worker's epoll only while a read is useful;
//!   with no buffer, it is not watched and the guest's next buffer kicks
//!   the receiveq.

mod backend;
mod stream;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::thread;

use vhost::vhost_user::Listener;

pub use backend::{ConsoleBackend, CONFIG_SPACE};
pub use stream::INPUT_CHUNK;

use crate::error::DeviceError;
use crate::serve::{self, Mode};

/// One console device: where it listens, where the guest's output goes,
/// where its input comes from (none: the guest gets no input).
pub struct ConsolePort {
    pub listener: Listener,
    pub output: OwnedFd,
    pub input: Option<OwnedFd>,
}

/// The console process: its devices (under `cordon run`, stdout+stdin
/// first, then stderr) and whether it serves one connection or many.
pub struct ConsoleConfig {
    pub ports: Vec<ConsolePort>,
    pub mode: Mode,
}

impl ConsoleConfig {
    /// `cordon device console --socket PATH`: one device on `listener`,
    /// writing to this process's stdout and reading its stdin.
    pub fn standalone(listener: Listener) -> Result<Self, DeviceError> {
        let output = io::stdout().as_fd().try_clone_to_owned();
        let input = io::stdin().as_fd().try_clone_to_owned();
        Ok(ConsoleConfig {
            ports: vec![ConsolePort {
                listener,
                output: output.map_err(DeviceError::Dup)?,
                input: Some(input.map_err(DeviceError::Dup)?),
            }],
            mode: Mode::Standalone,
        })
    }
}

/// Serves every port on a thread of its own; returns the first error, or
/// once every port is done (per `config.mode`).
pub fn start_backend(config: ConsoleConfig) -> Result<(), DeviceError> {
    let (done_tx, done_rx) = mpsc::channel();
    let count = config.ports.len();
    for (index, port) in config.ports.into_iter().enumerate() {
        let done = done_tx.clone();
        let mode = config.mode;
        thread::Builder::new()
            .name(format!("console{index}"))
            .spawn(move || {
                // The receiver is gone only once start_backend returned.
                let _ = done.send(serve_port(index, port, mode));
            })
            .map_err(DeviceError::Thread)?;
    }
    drop(done_tx);
    for _ in 0..count {
        match done_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(mpsc::RecvError) => return Err(DeviceError::Panicked),
        }
    }
    Ok(())
}

fn serve_port(index: usize, port: ConsolePort, mode: Mode) -> Result<(), DeviceError> {
    let ConsolePort {
        listener,
        output,
        input,
    } = port;
    serve::serve(&format!("console{index}"), listener, mode, || {
        // Each connection gets its own copies, closed when it ends.
        let output = output.try_clone().map_err(DeviceError::Dup)?;
        let input = input.as_ref().map(OwnedFd::try_clone).transpose();
        let input = input.map_err(DeviceError::Dup)?;
        Ok(ConsoleBackend::new(
            File::from(output),
            input.map(File::from),
        ))
    })
}
