//! The split virtqueue's layout and the driver's private bookkeeping of its
//! descriptors (virtio 1.2, 2.7). Pure arithmetic: nothing here touches
//! memory the device sees, so it is unit-tested on the host.

/// Largest queue this driver sets up (the queue size is
/// min(QueueNumMax, this), rounded down to a power of two).
pub const MAX_QUEUE_SIZE: u16 = 256;

/// Bytes of one descriptor (`struct virtq_desc`).
pub const DESC_SIZE: u64 = 16;
/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it reads it).
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors.
pub const DESC_F_INDIRECT: u16 = 4;
/// Used-ring flag: the device asks not to be notified.
pub const USED_F_NO_NOTIFY: u16 = 1;

/// Where the three parts of a split virtqueue of `size` entries lie,
/// relative to the start of one allocation (which must be 16-byte aligned):
/// the descriptor table (align 16), the driver area or available ring
/// (align 2), the device area or used ring (align 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Bytes of the whole allocation.
    pub total: u64,
}

impl Layout {
    /// The layout for `size` entries: `None` unless `size` is a power of
    /// two no larger than 32768 (the split ring's limit).
    pub const fn new(size: u16) -> Option<Layout> {
        if size == 0 || !size.is_power_of_two() || size > 0x8000 {
            return None;
        }
        let n = size as u64;
        let desc = 0;
        let avail = desc + DESC_SIZE * n;
        // flags, idx, ring[n], used_event
        let avail_bytes = 2 + 2 + 2 * n + 2;
        let used = align_up(avail + avail_bytes, 4);
        // flags, idx, ring[n] of {id: u32, len: u32}, avail_event
        let used_bytes = 2 + 2 + 8 * n + 2;
        Some(Layout {
            size,
            desc,
            avail,
            used,
            total: used + used_bytes,
        })
    }

    /// Offset of descriptor `index`.
    pub const fn desc_at(&self, index: u16) -> u64 {
        self.desc + DESC_SIZE * index as u64
    }

    /// Offset of the available ring's entry for ring index `idx`.
    pub const fn avail_entry(&self, idx: u16) -> u64 {
        self.avail + 4 + 2 * slot(idx, self.size) as u64
    }

    /// Offset of the available ring's `idx` field.
    pub const fn avail_idx(&self) -> u64 {
        self.avail + 2
    }

    /// Offset of the used ring's `flags` field.
    pub const fn used_flags(&self) -> u64 {
        self.used
    }

    /// Offset of the used ring's `idx` field.
    pub const fn used_idx(&self) -> u64 {
        self.used + 2
    }

    /// Offset of the used ring's element for ring index `idx`.
    pub const fn used_entry(&self, idx: u16) -> u64 {
        self.used + 4 + 8 * slot(idx, self.size) as u64
    }
}

/// `value` rounded up to a multiple of `align` (a power of two).
pub const fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}

/// The ring slot of free-running ring index `idx` (which wraps at 2^16,
/// a multiple of every valid queue size).
pub const fn slot(idx: u16, size: u16) -> u16 {
    idx & (size - 1)
}

/// How many used elements the device has added since `last_seen`, or
/// `None` if `used_idx` claims more than the queue can hold (a broken
/// device).
pub const fn new_used(used_idx: u16, last_seen: u16, size: u16) -> Option<u16> {
    let n = used_idx.wrapping_sub(last_seen);
    if n > size {
        None
    } else {
        Some(n)
    }
}

/// The largest queue size to use: the power of two at or below both the
/// device's maximum and `wanted`; `None` if the device offers none.
pub const fn choose_size(device_max: u32, wanted: u16) -> Option<u16> {
    let limit = if device_max < wanted as u32 {
        device_max
    } else {
        wanted as u32
    };
    if limit == 0 {
        return None;
    }
    Some(1 << (31 - limit.leading_zeros()))
}

/// Which descriptors are free and which form the chains the device holds.
/// Kept in driver-private memory: the device cannot corrupt it.
pub struct Slots {
    size: u16,
    /// For a free descriptor the next free one; inside a chain its successor.
    next: [u16; MAX_QUEUE_SIZE as usize],
    /// For a chain's head: its length (0: not a head in flight).
    chain_len: [u16; MAX_QUEUE_SIZE as usize],
    /// For a chain's head: the bytes the device may write.
    writable: [u32; MAX_QUEUE_SIZE as usize],
    free_head: u16,
    num_free: u16,
}

impl Slots {
    /// All `size` descriptors free (`size` at most `MAX_QUEUE_SIZE`).
    pub fn new(size: u16) -> Slots {
        let size = size.min(MAX_QUEUE_SIZE);
        let mut next = [0; MAX_QUEUE_SIZE as usize];
        for (i, n) in next.iter_mut().enumerate() {
            *n = i as u16 + 1;
        }
        Slots {
            size,
            next,
            chain_len: [0; MAX_QUEUE_SIZE as usize],
            writable: [0; MAX_QUEUE_SIZE as usize],
            free_head: 0,
            num_free: size,
        }
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// The head the next [`Slots::alloc`] returns, if any is free.
    pub fn next_head(&self) -> Option<u16> {
        (self.num_free > 0).then_some(self.free_head)
    }

    /// Takes `len` descriptors for a chain whose device-writable buffers
    /// total `writable` bytes; returns its head, or `None` if too few are
    /// free. [`Slots::chain`] lists the chain's descriptors in order.
    pub fn alloc(&mut self, len: u16, writable: u32) -> Option<u16> {
        if len == 0 || len > self.num_free {
            return None;
        }
        let head = self.free_head;
        let mut last = head;
        for _ in 1..len {
            last = self.next[last as usize];
        }
        self.free_head = self.next[last as usize];
        self.num_free -= len;
        self.chain_len[head as usize] = len;
        self.writable[head as usize] = writable;
        Some(head)
    }

    /// The descriptors of the chain at `head`, in order.
    pub fn chain(&self, head: u16) -> impl Iterator<Item = u16> + '_ {
        let len = self.chain_len.get(head as usize).copied().unwrap_or(0);
        let mut at = head;
        (0..len).map(move |_| {
            let this = at;
            at = self.next[at as usize];
            this
        })
    }

    /// Whether `head` is the head of a chain in flight.
    pub fn in_flight(&self, head: u32) -> bool {
        head < u32::from(self.size) && self.chain_len[head as usize] != 0
    }

    /// Returns the chain at `head` to the free list; gives its writable
    /// bytes, or `None` if `head` is not a chain in flight.
    pub fn free(&mut self, head: u32) -> Option<u32> {
        if !self.in_flight(head) {
            return None;
        }
        let head = head as u16;
        let len = self.chain_len[head as usize];
        let mut last = head;
        for _ in 1..len {
            last = self.next[last as usize];
        }
        self.next[last as usize] = self.free_head;
        self.free_head = head;
        self.num_free += len;
        self.chain_len[head as usize] = 0;
        Some(self.writable[head as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_aligns_each_part() {
        for size in [1u16, 2, 4, 16, 256, 0x8000] {
            let l = Layout::new(size).unwrap();
            assert_eq!(l.desc % 16, 0);
            assert_eq!(l.avail % 2, 0);
            assert_eq!(l.used % 4, 0);
            assert_eq!(l.avail, 16 * size as u64);
            assert!(l.used >= l.avail + 6 + 2 * size as u64);
            assert_eq!(l.total, l.used + 6 + 8 * size as u64);
        }
        let l = Layout::new(256).unwrap();
        assert_eq!((l.avail, l.used, l.total), (4096, 4616, 6670));
        assert_eq!(l.avail_entry(257), l.avail + 4 + 2);
        assert_eq!(l.used_entry(255), l.used + 4 + 8 * 255);
    }

    #[test]
    fn layout_refuses_bad_sizes() {
        for size in [0u16, 3, 100, 255, 0xFFFF] {
            assert_eq!(Layout::new(size), None);
        }
    }

    #[test]
    fn ring_indices_wrap() {
        assert_eq!(slot(0xFFFF, 256), 255);
        assert_eq!(slot(0x1_0000u32 as u16, 256), 0);
        assert_eq!(new_used(2, 0xFFFE, 256), Some(4));
        assert_eq!(new_used(5, 5, 256), Some(0));
        assert_eq!(new_used(300, 0, 256), None);
        assert_eq!(new_used(0, 1, 256), None);
    }

    #[test]
    fn size_is_a_power_of_two_within_both_limits() {
        assert_eq!(choose_size(1024, 256), Some(256));
        assert_eq!(choose_size(100, 256), Some(64));
        assert_eq!(choose_size(1, 256), Some(1));
        assert_eq!(choose_size(0, 256), None);
        assert_eq!(choose_size(u32::MAX, 256), Some(256));
    }

    #[test]
    fn chains_come_and_go() {
        let mut s = Slots::new(8);
        assert_eq!(s.next_head(), Some(0));
        let a = s.alloc(3, 10).unwrap();
        assert_eq!(s.next_head(), Some(3));
        let b = s.alloc(4, 0).unwrap();
        assert_eq!(s.num_free(), 1);
        assert_eq!(s.alloc(2, 0), None);
        let chain_a: [u16; 3] = core::array::from_fn(|i| s.chain(a).nth(i).unwrap());
        let chain_b: [u16; 4] = core::array::from_fn(|i| s.chain(b).nth(i).unwrap());
        assert_eq!(chain_a, [0, 1, 2]);
        assert_eq!(chain_b, [3, 4, 5, 6]);
        assert_eq!(s.free(a.into()), Some(10));
        assert_eq!(s.free(a.into()), None, "a chain is freed once");
        assert_eq!(s.free(99), None);
        assert_eq!(s.free(1), None, "not a head");
        assert_eq!(s.next_head(), Some(a));
        let c = s.alloc(4, 0).unwrap();
        assert_eq!(c, a, "the freed chain is reused first");
        assert_eq!(s.num_free(), 0);
        assert_eq!(s.next_head(), None);
        let mut seen = [false; 8];
        for d in s.chain(b).chain(s.chain(c)) {
            assert!(!seen[d as usize], "descriptor {d} in two chains");
            seen[d as usize] = true;
        }
        s.free(b.into()).unwrap();
        s.free(c.into()).unwrap();
        assert_eq!(s.num_free(), 8);
        assert!(s.alloc(8, 0).is_some());
    }
}
