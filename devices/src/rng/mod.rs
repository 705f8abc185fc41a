//! virtio-rng: one request queue whose device-writable buffers are filled
//! from the host's getrandom(2).

mod backend;
#[cfg(test)]
mod tests;

use std::io;
use std::io::Write;

use vhost::vhost_user::Listener;
use virtio_queue::{Queue, Writer};

pub use backend::RngBackend;

use crate::error::DeviceError;
use crate::serve::queue::{self, guest_warn, Chain, Direction, Mem, QueueError};
use crate::serve::{self, Mode};

/// Bytes given for one request at most, however large its buffers: a guest
/// asking for gigabytes gets 64 KiB and asks again.
pub const MAX_REQUEST: usize = 64 * 1024;

/// How the rng backend runs: `cordon device rng --socket PATH` binds the
/// listener (standalone); `cordon run` hands it over (spawned).
pub struct RngConfig {
    pub listener: Listener,
    pub mode: Mode,
}

/// Serves virtio-rng on the config's listener; returns per `config.mode`.
pub fn start_backend(config: RngConfig) -> Result<(), DeviceError> {
    serve::serve(
        "rng",
        config.listener,
        config.mode,
        || Ok(RngBackend::new()),
    )
}

/// Fills `buf` from getrandom(2), retrying short reads and EINTR.
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes, and
        // getrandom writes at most that many bytes into it.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Answers every request on the queue with bytes from `source`. Returns
/// whether the driver must be notified.
pub fn process_queue<S>(queue: &mut Queue, mem: &Mem, mut source: S) -> Result<bool, QueueError>
where
    S: FnMut(&mut [u8]) -> io::Result<()>,
{
    queue::drain(queue, mem, |chain| fill_chain(chain, mem, &mut source))
}

/// Fills one chain's buffers, up to [`MAX_REQUEST`] bytes; returns the used
/// length. A bad chain gets nothing.
fn fill_chain<S>(chain: Chain<'_>, mem: &Mem, source: &mut S) -> u32
where
    S: FnMut(&mut [u8]) -> io::Result<()>,
{
    let total = match queue::check_chain(&chain, Direction::ToGuest) {
        Ok(total) => total,
        Err(e) => {
            guest_warn(format_args!("rng: request ignored: {e}"));
            return 0;
        }
    };
    let mut writer = match Writer::new(mem, chain) {
        Ok(writer) => writer,
        Err(e) => {
            guest_warn(format_args!(
                "rng: request ignored: descriptor outside guest memory: {e}"
            ));
            return 0;
        }
    };
    let want = usize::try_from(total).map_or(MAX_REQUEST, |t| t.min(MAX_REQUEST));
    let mut buf = [0u8; 4096];
    let mut written = 0;
    while written < want {
        let chunk = &mut buf[..(want - written).min(4096)];
        if let Err(e) = source(chunk) {
            guest_warn(format_args!("rng: getrandom failed: {e}"));
            break;
        }
        match writer.write(chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    u32::try_from(written).unwrap_or(0)
}
