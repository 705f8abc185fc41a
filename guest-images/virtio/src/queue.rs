//! A split virtqueue in memory shared with the device (virtio 1.2, 2.7),
//! used by polling: add chains, publish them with one notify, then poll the
//! used ring, blocking in the ABI's wait call while nothing is there.
//!
//! Every access to the rings is volatile, with the fences the spec asks for:
//! descriptors and ring entries before the available index, the available
//! index before reading the device's notification flags, the used index
//! before the used elements and the buffers they describe.

use core::ptr;
use core::sync::atomic::{fence, Ordering};

use crate::clock::{now_us, Deadline};
use crate::mmio::{reg, Mmio};
use crate::ring::{new_used, Layout, Slots, DESC_F_NEXT, DESC_F_WRITE, USED_F_NO_NOTIFY};
use crate::transport::check_status;
use crate::{dma, VirtioError};

/// Longest single wait while polling. A device signal ends a wait early,
/// and one that came before the wait is not lost (cordon keeps it until the
/// next wait, which then returns at once), so this only bounds how long an
/// idle guest stays in one wait: 100 exits a second.
pub const WAIT_SLICE_US: u32 = 10_000;
/// How often a poll with no progress reads Status to notice a failed device.
const STATUS_CHECK_US: u64 = 100_000;

/// One buffer of a chain: guest-physical address, length, direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
    /// The device writes this buffer (otherwise it only reads it).
    pub device_writes: bool,
}

impl Segment {
    /// A buffer the device reads.
    pub fn readable(buf: &[u8]) -> Segment {
        Segment {
            addr: buf.as_ptr() as u64,
            len: buf.len() as u32,
            device_writes: false,
        }
    }

    /// A buffer the device writes.
    pub fn writable(buf: &mut [u8]) -> Segment {
        Segment {
            addr: buf.as_mut_ptr() as u64,
            len: buf.len() as u32,
            device_writes: true,
        }
    }
}

/// A chain the device has returned: its head and the bytes it wrote (never
/// more than the chain's writable buffers hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    pub head: u16,
    pub len: u32,
}

/// A split virtqueue this driver owns.
pub struct Virtqueue {
    index: u16,
    regs: Mmio,
    base: u64,
    layout: Layout,
    slots: Slots,
    /// Available index the next added chain gets.
    next_avail: u16,
    /// Available index last written to the ring.
    published: u16,
    last_used: u16,
}

impl Virtqueue {
    /// A queue over rings already programmed into the device (normally
    /// made by [`crate::Transport::setup_queue`]; hostile guests lay out
    /// their own).
    ///
    /// # Safety
    /// `base..base + layout.total` must be zeroed RAM, 16-byte aligned, that
    /// only this queue (and the device) will touch, programmed as queue
    /// `index` of the device at `regs`.
    pub unsafe fn new(index: u16, regs: Mmio, base: u64, layout: Layout) -> Virtqueue {
        Virtqueue {
            index,
            regs,
            base,
            layout,
            slots: Slots::new(layout.size),
            next_avail: 0,
            published: 0,
            last_used: 0,
        }
    }

    /// The queue's index on its device.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Number of descriptors.
    pub fn size(&self) -> u16 {
        self.layout.size
    }

    /// Descriptors not in a chain the device holds.
    pub fn num_free(&self) -> u16 {
        self.slots.num_free()
    }

    /// The head the next [`Virtqueue::add`] will return, if a descriptor is
    /// free (so a driver can place per-request data by head beforehand).
    pub fn next_head(&self) -> Option<u16> {
        self.slots.next_head()
    }

    /// Guest addresses of the descriptor table, available and used rings.
    pub fn addrs(&self) -> (u64, u64, u64) {
        let l = &self.layout;
        (self.base + l.desc, self.base + l.avail, self.base + l.used)
    }

    fn at<T>(&self, offset: u64) -> *mut T {
        (self.base + offset) as *mut T
    }

    fn write<T>(&self, offset: u64, value: T) {
        debug_assert!(offset + core::mem::size_of::<T>() as u64 <= self.layout.total);
        // SAFETY: every offset comes from `self.layout`, so it lies inside
        // the queue memory `new` was given, suitably aligned for `T`; only
        // this queue and the device use that memory, so there is no Rust
        // reference to it, and volatile keeps each access as written.
        unsafe { ptr::write_volatile(self.at::<T>(offset), value) }
    }

    fn read<T>(&self, offset: u64) -> T {
        debug_assert!(offset + core::mem::size_of::<T>() as u64 <= self.layout.total);
        // SAFETY: as in `write`: inside this queue's memory, aligned, only
        // shared with the device.
        unsafe { ptr::read_volatile(self.at::<T>(offset)) }
    }

    /// Writes descriptor `index` as given.
    ///
    /// # Safety
    /// The device will read or write `len` bytes at `addr` once a chain
    /// including this descriptor is published: that memory must stay valid,
    /// and untouched by Rust while the device may write it, until then.
    pub unsafe fn write_desc(&mut self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = self.layout.desc_at(index % self.layout.size);
        self.write(at, addr);
        self.write(at + 8, len);
        self.write(at + 12, flags);
        self.write(at + 14, next);
    }

    /// Descriptor `index` as it is in the table: (addr, len, flags, next).
    pub fn read_desc(&self, index: u16) -> (u64, u32, u16, u16) {
        let at = self.layout.desc_at(index % self.layout.size);
        (
            self.read(at),
            self.read(at + 8),
            self.read(at + 12),
            self.read(at + 14),
        )
    }

    /// Adds a chain of `segments` (not yet visible to the device: see
    /// [`Virtqueue::kick`]); returns its head.
    ///
    /// # Safety
    /// Each segment's memory must stay valid until the chain comes back from
    /// [`Virtqueue::pop_used`] or [`Virtqueue::wait_used`] (or the device is
    /// reset), and Rust must not access a device-writable one until then.
    pub unsafe fn add(&mut self, segments: &[Segment]) -> Result<u16, VirtioError> {
        let needed = segments.len();
        let free = self.slots.num_free();
        if needed == 0 || needed > usize::from(free) {
            return Err(VirtioError::QueueFull { needed, free });
        }
        let mut writable = 0u32;
        for s in segments {
            if !dma::in_ram(s.addr, u64::from(s.len)) {
                return Err(VirtioError::NotInRam {
                    addr: s.addr,
                    len: s.len.into(),
                });
            }
            if s.device_writes {
                writable = writable.saturating_add(s.len);
            }
        }
        let head = self
            .slots
            .alloc(needed as u16, writable)
            .ok_or(VirtioError::QueueFull { needed, free })?;
        let mut chain = [0u16; crate::ring::MAX_QUEUE_SIZE as usize];
        for (slot, d) in chain.iter_mut().zip(self.slots.chain(head)) {
            *slot = d;
        }
        for (i, s) in segments.iter().enumerate() {
            let last = i + 1 == needed;
            let mut flags = if s.device_writes { DESC_F_WRITE } else { 0 };
            let next = if last { 0 } else { chain[i + 1] };
            if !last {
                flags |= DESC_F_NEXT;
            }
            // SAFETY: the caller keeps each segment valid until the chain
            // is used, as this function's contract says.
            unsafe { self.write_desc(chain[i], s.addr, s.len, flags, next) };
        }
        self.push_avail(head);
        Ok(head)
    }

    /// Puts `head` in the next slot of the available ring (unpublished).
    fn push_avail(&mut self, head: u16) {
        self.write(self.layout.avail_entry(self.next_avail), head);
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    /// Publishes the chains added since the last kick and notifies the
    /// device, unless it asked not to be (VIRTQ_USED_F_NO_NOTIFY).
    pub fn kick(&mut self) {
        if self.next_avail == self.published {
            return;
        }
        fence(Ordering::Release);
        self.write(self.layout.avail_idx(), self.next_avail);
        self.published = self.next_avail;
        // The index store must be visible before the flags are read.
        fence(Ordering::SeqCst);
        if self.read::<u16>(self.layout.used_flags()) & USED_F_NO_NOTIFY == 0 {
            self.notify();
        }
    }

    /// Writes QueueNotify (caught by an ioeventfd: no exit to the VMM).
    pub fn notify(&self) {
        self.regs.write32(reg::QUEUE_NOTIFY, u32::from(self.index));
    }

    /// Puts `head` in the available ring, publishes it and notifies,
    /// without any bookkeeping: for chains made with
    /// [`Virtqueue::write_desc`]. The queue's own chains are unusable after.
    ///
    /// # Safety
    /// As for [`Virtqueue::write_desc`], for every descriptor the device may
    /// reach from `head`.
    pub unsafe fn publish_raw(&mut self, head: u16) {
        self.push_avail(head);
        fence(Ordering::Release);
        self.write(self.layout.avail_idx(), self.next_avail);
        self.published = self.next_avail;
        fence(Ordering::SeqCst);
        self.notify();
    }

    /// The used ring's index as the device last wrote it.
    pub fn used_idx(&self) -> u16 {
        self.read(self.layout.used_idx())
    }

    /// The used element at ring index `idx`: (id, len), unchecked.
    pub fn used_elem(&self, idx: u16) -> (u32, u32) {
        let at = self.layout.used_entry(idx);
        (self.read(at), self.read(at + 4))
    }

    /// The next chain the device returned, if any.
    pub fn pop_used(&mut self) -> Result<Option<Used>, VirtioError> {
        let idx = self.used_idx();
        match new_used(idx, self.last_used, self.layout.size) {
            None => return Err(VirtioError::BadUsed { id: u32::from(idx) }),
            Some(0) => return Ok(None),
            Some(_) => {}
        }
        // The used index before the element and the buffers it describes.
        fence(Ordering::Acquire);
        let (id, len) = self.used_elem(self.last_used);
        self.last_used = self.last_used.wrapping_add(1);
        let writable = self.slots.free(id).ok_or(VirtioError::BadUsed { id })?;
        Ok(Some(Used {
            head: id as u16,
            len: len.min(writable),
        }))
    }

    /// Polls until the device returns a chain, waiting in the ABI's wait
    /// call in between; fails at `deadline` or when Status says the device
    /// failed (checked every 100 ms without progress).
    pub fn wait_used(&mut self, deadline: Deadline) -> Result<Used, VirtioError> {
        let mut next_check = now_us() + STATUS_CHECK_US;
        loop {
            if let Some(used) = self.pop_used()? {
                return Ok(used);
            }
            if deadline.passed() {
                return Err(VirtioError::Timeout);
            }
            guest_rt::wait(deadline.left_us(WAIT_SLICE_US).max(1));
            if now_us() >= next_check {
                check_status(self.regs.read32(reg::STATUS))?;
                next_check = now_us() + STATUS_CHECK_US;
            }
        }
    }
}
