//! virtio-console driver for one port without MULTIPORT: transmitq for
//! output, receiveq with posted buffers for input.

use core::fmt;

use crate::clock::Deadline;
use crate::queue::{Segment, Virtqueue};
use crate::transport::Transport;
use crate::{dma, Device, Used, VirtioError};

const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;
/// Receive buffers kept posted (at most; the queue may be smaller).
const RX_BUFFERS: u16 = 16;
/// Bytes of each receive buffer.
const RX_BUFFER_SIZE: u32 = 1024;
/// Transmit descriptors: how many chunks one write publishes at once.
const TX_QUEUE_SIZE: u16 = 64;
/// Largest chunk of a write in one descriptor.
const TX_CHUNK: usize = 0x1_0000;
/// Time a write may wait for the device to take it before it counts as
/// dead (a host that does not drain the console stalls the guest this long).
const TX_TIMEOUT_MS: u64 = 60_000;

/// A received buffer not yet fully read: its head, length, bytes consumed.
#[derive(Clone, Copy)]
struct Pending {
    head: u16,
    len: u32,
    read: u32,
}

/// A virtio console port.
pub struct Console {
    transport: Transport,
    rx: Virtqueue,
    tx: Virtqueue,
    /// `rx.size()` buffers of `RX_BUFFER_SIZE` bytes, buffer i for head i.
    rx_buffers: u64,
    pending: Option<Pending>,
    /// The device said the input has ended: reads return 0.
    eof: bool,
}

impl Console {
    /// Resets and sets up the console `device`, and posts its receive
    /// buffers.
    pub fn new(device: &Device) -> Result<Console, VirtioError> {
        let mut transport = Transport::start(device, 0)?;
        let rx = transport.setup_queue(RX_QUEUE, RX_BUFFERS)?;
        let tx = transport.setup_queue(TX_QUEUE, TX_QUEUE_SIZE)?;
        let bytes = u64::from(rx.size()) * u64::from(RX_BUFFER_SIZE);
        let rx_buffers = dma::alloc_zeroed(bytes, 16).ok_or(VirtioError::OutOfMemory)?;
        transport.driver_ok()?;
        let mut console = Console {
            transport,
            rx,
            tx,
            rx_buffers,
            pending: None,
            eof: false,
        };
        while console.rx.num_free() > 0 {
            console.post_rx()?;
        }
        console.rx.kick();
        Ok(console)
    }

    /// Features offered and negotiated.
    pub fn features(&self) -> (u64, u64) {
        (self.transport.offered(), self.transport.features())
    }

    /// Writes all of `bytes`, in chunks published together, and waits until
    /// the device has taken them.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), VirtioError> {
        self.transport.usable()?;
        let (addr, len) = (bytes.as_ptr() as u64, bytes.len() as u64);
        if !dma::in_ram(addr, len) {
            return Err(VirtioError::NotInRam { addr, len });
        }
        let mut chunks = bytes.chunks(TX_CHUNK).peekable();
        let mut outstanding = 0;
        while chunks.peek().is_some() || outstanding > 0 {
            while self.tx.num_free() > 0 {
                let Some(chunk) = chunks.next() else { break };
                // SAFETY: `bytes` stays borrowed until this function
                // returns, which is after the device used every chunk (or
                // after `break_device` reset it).
                if let Err(e) = unsafe { self.tx.add(&[Segment::readable(chunk)]) } {
                    self.tx.kick();
                    self.transport.give_up();
                    return Err(e);
                }
                outstanding += 1;
            }
            self.tx.kick();
            let deadline = Deadline::after_ms(TX_TIMEOUT_MS);
            self.tx
                .wait_used(deadline)
                .inspect_err(|_| self.transport.give_up())?;
            outstanding -= 1;
            while self
                .tx
                .pop_used()
                .inspect_err(|_| self.transport.give_up())?
                .is_some()
            {
                outstanding -= 1;
            }
        }
        Ok(())
    }

    /// Reads at least one byte into `out` (0 at the end of input, or if
    /// `out` is empty), waiting as
    /// long as it takes.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, VirtioError> {
        self.read_before(out, Deadline::never())
    }

    /// Reads at least one byte into `out`, or 0 if none came by `deadline`
    /// or the input has ended.
    pub fn read_before(
        &mut self,
        out: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, VirtioError> {
        self.transport.usable()?;
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(p) = self.pending {
                return self.take(p, out);
            }
            if self.eof {
                return Ok(0);
            }
            match self
                .rx
                .pop_used()
                .inspect_err(|_| self.transport.give_up())?
            {
                Some(used) => self.received(used)?,
                None if deadline.passed() => return Ok(0),
                None => match self.rx.wait_used(deadline) {
                    Ok(used) => self.received(used)?,
                    Err(VirtioError::Timeout) => return Ok(0),
                    Err(e) => {
                        self.transport.give_up();
                        return Err(e);
                    }
                },
            }
        }
    }

    /// Takes note of a filled receive buffer; an empty one is the end of
    /// input (cordon's console backend uses one buffer with length 0 when
    /// its input ends), and is posted again.
    fn received(&mut self, used: Used) -> Result<(), VirtioError> {
        if used.len == 0 {
            self.eof = true;
            self.post_rx()?;
            self.rx.kick();
        } else {
            self.pending = Some(Pending {
                head: used.head,
                len: used.len,
                read: 0,
            });
        }
        Ok(())
    }

    /// Copies what `out` holds of the pending buffer; reposts the buffer
    /// once it is read out.
    fn take(&mut self, mut p: Pending, out: &mut [u8]) -> Result<usize, VirtioError> {
        let n = ((p.len - p.read) as usize).min(out.len());
        let src = self.rx_buffer(p.head) + u64::from(p.read);
        // SAFETY: the buffer is this driver's arena memory and the device
        // returned it (it is not posted again before it is read out); `n`
        // bytes from `p.read` stay inside its `len` <= RX_BUFFER_SIZE.
        let data = unsafe { core::slice::from_raw_parts(src as *const u8, n) };
        out[..n].copy_from_slice(data);
        p.read += n as u32;
        if p.read == p.len {
            self.pending = None;
            self.post_rx()?;
            self.rx.kick();
        } else {
            self.pending = Some(p);
        }
        Ok(n)
    }

    fn rx_buffer(&self, head: u16) -> u64 {
        self.rx_buffers + u64::from(head) * u64::from(RX_BUFFER_SIZE)
    }

    /// Posts the receive buffer of the next free head (unpublished).
    fn post_rx(&mut self) -> Result<(), VirtioError> {
        let head = self
            .rx
            .next_head()
            .ok_or(VirtioError::QueueFull { needed: 1, free: 0 })?;
        let seg = Segment {
            addr: self.rx_buffer(head),
            len: RX_BUFFER_SIZE,
            device_writes: true,
        };
        // SAFETY: each receive buffer is arena memory owned by this driver;
        // Rust reads it only after the device returns it (`take`).
        unsafe { self.rx.add(&[seg]) }.map(|_| ())
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
