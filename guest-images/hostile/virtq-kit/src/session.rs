//! A device set up by the book whose queue a hostile guest fills by hand.

use core::ptr;
use core::sync::atomic::{fence, Ordering};

use guest_rt::println;
use guest_virtio::blk_proto::{header, status_name, T_IN};
use guest_virtio::clock::Deadline;
use guest_virtio::ring::{DESC_F_NEXT, DESC_F_WRITE, MAX_QUEUE_SIZE};
use guest_virtio::{dma, Transport, VirtioError, Virtqueue};

use crate::{Kind, Target};

/// Layout of the session's scratch memory: a block request's header and
/// status byte, a 512-byte data buffer, a line of text for the console.
const SCRATCH_SIZE: u64 = 0x2000;
const HEADER: u64 = 0;
const STATUS: u64 = 16;
const DATA: u64 = 512;
pub const DATA_LEN: u32 = 512;
const TEXT: u64 = 1024;
const LINE: &[u8] = b"virtq: a valid request\n";
/// How long a guest waits for the device to return a chain.
pub const OBSERVE_MS: u64 = 500;

/// What became of a published chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Returned { head: u32, len: u32 },
    NotReturned,
}

pub struct Session {
    pub target: Target,
    pub transport: Transport,
    pub queue: Virtqueue,
    scratch: u64,
    /// Used index up to which the guest has looked.
    seen: u16,
}

impl Session {
    /// Resets the device and sets it up by the book: features (`wanted` as
    /// far as offered, and VERSION_1), the attacked queue (and console's
    /// receiveq, with nothing posted), DRIVER_OK.
    pub fn start(target: &Target, wanted: u64) -> Result<Session, VirtioError> {
        let mut transport = Transport::start(&target.device, wanted)?;
        if target.kind == Kind::Console {
            transport.setup_queue(0, 16)?;
        }
        let queue = transport.setup_queue(target.kind.queue(), MAX_QUEUE_SIZE)?;
        transport.driver_ok()?;
        Session::with(target, transport, queue)
    }

    /// A session over a transport and queue the caller set up.
    pub fn with(
        target: &Target,
        transport: Transport,
        queue: Virtqueue,
    ) -> Result<Session, VirtioError> {
        let scratch = dma::alloc_zeroed(SCRATCH_SIZE, 0x1000).ok_or(VirtioError::OutOfMemory)?;
        Ok(Session {
            target: *target,
            transport,
            queue,
            scratch,
            seen: 0,
        })
    }

    /// Address of the data buffer (512 bytes of scratch memory).
    pub fn data(&self) -> u64 {
        self.scratch + DATA
    }

    /// Address and length of the block header (16 bytes, device-readable).
    pub fn header(&self) -> u64 {
        self.scratch + HEADER
    }

    /// Address of the block status byte.
    pub fn status(&self) -> u64 {
        self.scratch + STATUS
    }

    /// Writes descriptor `index` of the attacked queue.
    ///
    /// # Safety
    /// `addr..addr + len` must be this session's scratch memory or lie
    /// outside guest RAM, so whatever the device does there touches no Rust
    /// object.
    pub unsafe fn desc(&mut self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        // SAFETY: passed on from the caller.
        unsafe { self.queue.write_desc(index, addr, len, flags, next) }
    }

    /// Points descriptor `index` at `next`, keeping its buffer.
    pub fn relink(&mut self, index: u16, next: u16) {
        let (addr, len, flags, _) = self.queue.read_desc(index);
        // SAFETY: the buffer is the one already in the table, written
        // through `desc`, whose contract covers it.
        unsafe { self.desc(index, addr, len, flags | DESC_F_NEXT, next) }
    }

    /// Points descriptor `index` at another buffer, keeping its flags and
    /// link.
    ///
    /// # Safety
    /// As for [`Session::desc`].
    pub unsafe fn relocate(&mut self, index: u16, addr: u64, len: u32) {
        let (_, _, flags, next) = self.queue.read_desc(index);
        // SAFETY: passed on from the caller.
        unsafe { self.desc(index, addr, len, flags, next) }
    }

    /// Index of the descriptor carrying a valid request's data (block:
    /// after the header).
    pub fn data_index(&self, first: u16) -> u16 {
        match self.target.kind {
            Kind::Block => first + 1,
            Kind::Rng | Kind::Console => first,
        }
    }

    /// Descriptors a valid request of this kind takes.
    pub fn request_len(&self) -> u16 {
        match self.target.kind {
            Kind::Block => 3,
            Kind::Rng | Kind::Console => 1,
        }
    }

    /// Writes a valid request (block: read sector 0; rng: fill 512 bytes;
    /// console: write a line) at descriptors `first..`; returns its head.
    pub fn valid_request(&mut self, first: u16) -> u16 {
        // SAFETY: the header, text and status are the session's scratch
        // memory, which nothing else uses.
        unsafe {
            ptr::write_volatile(self.header() as *mut [u8; 16], header(T_IN, 0));
            ptr::copy_nonoverlapping(LINE.as_ptr(), (self.scratch + TEXT) as *mut u8, LINE.len());
        }
        let (data, text) = (self.data(), self.scratch + TEXT);
        let (hdr, status) = (self.header(), self.status());
        // SAFETY: every descriptor points into the session's scratch memory.
        unsafe {
            match self.target.kind {
                Kind::Block => {
                    self.desc(first, hdr, 16, DESC_F_NEXT, first + 1);
                    self.desc(
                        first + 1,
                        data,
                        DATA_LEN,
                        DESC_F_WRITE | DESC_F_NEXT,
                        first + 2,
                    );
                    self.desc(first + 2, status, 1, DESC_F_WRITE, 0);
                }
                Kind::Rng => self.desc(first, data, DATA_LEN, DESC_F_WRITE, 0),
                Kind::Console => self.desc(first, text, LINE.len() as u32, 0, 0),
            }
        }
        first
    }

    /// Puts `head` in the available ring and notifies the device.
    pub fn publish(&mut self, head: u16) {
        // The status byte reads 0xff until a device writes it.
        // SAFETY: the status byte is the session's scratch memory.
        unsafe { ptr::write_volatile(self.status() as *mut u8, 0xFF) };
        // SAFETY: the guests write descriptors only through `desc`, whose
        // contract keeps the device away from Rust objects.
        unsafe { self.queue.publish_raw(head) }
    }

    /// Waits up to `ms` for the device to return a chain.
    pub fn observe(&mut self, ms: u64) -> Outcome {
        let deadline = Deadline::after_ms(ms);
        loop {
            if self.queue.used_idx() != self.seen {
                fence(Ordering::Acquire);
                let (head, len) = self.queue.used_elem(self.seen);
                self.seen = self.seen.wrapping_add(1);
                return Outcome::Returned { head, len };
            }
            if deadline.passed() {
                return Outcome::NotReturned;
            }
            guest_rt::wait(deadline.left_us(2000).max(1));
        }
    }

    /// Waits for the device's answer to `what` and prints it with the
    /// Status register: `NAME: WHAT: returned head H, len L[, block status
    /// S (NAME)]; status 0x..` or `NAME: WHAT: not returned within 500 ms;
    /// status 0x..`.
    pub fn report(&mut self, what: impl core::fmt::Display) -> Outcome {
        let name = self.target.name;
        let outcome = self.observe(OBSERVE_MS);
        let status = self.transport.read_status();
        match outcome {
            Outcome::Returned { head, len } if self.target.kind == Kind::Block => {
                // SAFETY: the status byte is the session's scratch memory.
                let s = unsafe { ptr::read_volatile(self.status() as *const u8) };
                if s == 0xFF {
                    println!("{name}: {what}: returned head {head}, len {len}, block status not written; status {status:#x}");
                } else {
                    println!(
                        "{name}: {what}: returned head {head}, len {len}, block status {s} ({}); status {status:#x}",
                        status_name(s)
                    );
                }
            }
            Outcome::Returned { head, len } => {
                println!("{name}: {what}: returned head {head}, len {len}; status {status:#x}");
            }
            Outcome::NotReturned => {
                println!("{name}: {what}: not returned within {OBSERVE_MS} ms; status {status:#x}");
            }
        }
        outcome
    }

    /// Publishes a valid request on the attacked queue, at descriptors in
    /// the upper half of the table, and reports it.
    pub fn valid_on_same_queue(&mut self) -> Outcome {
        let head = self.valid_request(self.queue.size() / 2);
        self.publish(head);
        self.report("a valid request on the same queue")
    }
}
