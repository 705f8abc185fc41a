//! virtio-rng driver: one request queue of device-writable buffers.

use crate::clock::Deadline;
use crate::queue::{Segment, Virtqueue};
use crate::transport::Transport;
use crate::{dma, Device, VirtioError};

/// Descriptors in the request queue (one request is in flight at a time).
const QUEUE_SIZE: u16 = 8;
/// Time one request may take before the device counts as dead.
const TIMEOUT_MS: u64 = 10_000;
/// Largest buffer one request asks to fill.
const MAX_REQUEST: usize = 0x10_0000;

/// A virtio entropy device.
pub struct Rng {
    transport: Transport,
    queue: Virtqueue,
}

impl Rng {
    /// Resets and sets up the rng `device`.
    pub fn new(device: &Device) -> Result<Rng, VirtioError> {
        let mut transport = Transport::start(device, 0)?;
        let queue = transport.setup_queue(0, QUEUE_SIZE)?;
        transport.driver_ok()?;
        Ok(Rng { transport, queue })
    }

    /// Features offered and negotiated.
    pub fn features(&self) -> (u64, u64) {
        (self.transport.offered(), self.transport.features())
    }

    /// One request: the device fills a prefix of `buf` (at most 1 MiB);
    /// returns how many bytes it wrote (possibly 0).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, VirtioError> {
        self.transport.usable()?;
        let len = buf.len().min(MAX_REQUEST);
        if len == 0 {
            return Ok(0);
        }
        let seg = Segment::writable(&mut buf[..len]);
        if !dma::in_ram(seg.addr, u64::from(seg.len)) {
            return Err(VirtioError::NotInRam {
                addr: seg.addr,
                len: len as u64,
            });
        }
        // SAFETY: `buf` stays borrowed until this function returns, after
        // the device used the request or was reset.
        unsafe { self.queue.add(&[seg]) }?;
        self.queue.kick();
        match self.queue.wait_used(Deadline::after_ms(TIMEOUT_MS)) {
            Ok(used) => Ok(used.len as usize),
            Err(e) => {
                self.transport.give_up();
                Err(e)
            }
        }
    }

    /// Fills all of `buf`, with as many requests as the device needs.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<(), VirtioError> {
        let mut done = 0;
        let deadline = Deadline::after_ms(TIMEOUT_MS);
        while done < buf.len() {
            let n = self.read(&mut buf[done..])?;
            if n == 0 && deadline.passed() {
                return Err(VirtioError::Timeout);
            }
            done += n;
        }
        Ok(())
    }
}
