//! Driver-side queues in plain memory, for the backends' unit tests.

use virtio_bindings::bindings::virtio_ring::{
    VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress};

use super::queue::Mem;

/// Queue size of the test queues.
pub const QUEUE_SIZE: u16 = 16;
/// Guest memory size; buffers go from [`BUFFERS`] up.
pub const MEM_SIZE: usize = 0x4_0000;
/// Where test buffers start, above the rings.
pub const BUFFERS: u64 = 0x1000;

pub const WRITE: u16 = VRING_DESC_F_WRITE as u16;
pub const NEXT: u16 = VRING_DESC_F_NEXT as u16;
pub const INDIRECT: u16 = VRING_DESC_F_INDIRECT as u16;

pub fn memory() -> Mem {
    Mem::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).expect("test memory")
}

pub fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
    RawDescriptor::from(Descriptor::new(addr, len, flags, next))
}

/// Where the test queues' used ring goes. MockSplitQueue (virtio-queue
/// 0.18) puts its used ring at the avail ring's start plus the number of
/// entries (not bytes), over the avail ring's tail and `used_event`; the
/// queue under test gets a used ring of its own here instead.
pub const USED_RING: u64 = 0x800;

pub fn queue(vq: &MockSplitQueue<'_, Mem>) -> Queue {
    let mut queue: Queue = vq.create_queue().expect("test queue");
    queue.set_used_ring_address(Some(USED_RING as u32), Some(0));
    queue
}

/// `used_event` in the avail ring: the driver asks for a notification once
/// the used index passes it (EVENT_IDX).
pub fn set_used_event(vq: &MockSplitQueue<'_, Mem>, mem: &Mem, value: u16) {
    let addr = vq.avail_addr().unchecked_add(4 + 2 * u64::from(QUEUE_SIZE));
    mem.write_obj(value, addr).expect("used_event");
}

/// `avail_event` in the used ring: the device asks for a kick once the
/// avail index passes it (EVENT_IDX).
pub fn avail_event(mem: &Mem) -> u16 {
    let addr = GuestAddress(USED_RING + 4 + 8 * u64::from(QUEUE_SIZE));
    mem.read_obj(addr).expect("avail_event")
}

/// Writes `descs` into the table from index `at`; every descriptor that
/// does not follow one with NEXT set becomes an available chain head.
pub fn post(vq: &MockSplitQueue<'_, Mem>, at: u16, descs: &[RawDescriptor]) {
    vq.add_desc_chains(descs, at).expect("post chains");
}

/// Makes `head` available without touching the table.
pub fn post_head(vq: &MockSplitQueue<'_, Mem>, mem: &Mem, head: u16) {
    let avail = vq.avail_addr();
    let idx: u16 = mem.read_obj(avail.unchecked_add(2)).expect("avail idx");
    let slot = avail.unchecked_add(4 + 2 * u64::from(idx % QUEUE_SIZE));
    mem.write_obj(head, slot).expect("avail slot");
    mem.write_obj(idx.wrapping_add(1), avail.unchecked_add(2))
        .expect("avail idx");
}

/// The used ring as (id, len) pairs, oldest first.
pub fn used(mem: &Mem) -> Vec<(u32, u32)> {
    let count: u16 = mem.read_obj(GuestAddress(USED_RING + 2)).expect("used idx");
    (0..count)
        .map(|i| {
            let elem = USED_RING + 4 + 8 * u64::from(i % QUEUE_SIZE);
            let id: u32 = mem.read_obj(GuestAddress(elem)).expect("used id");
            let len: u32 = mem.read_obj(GuestAddress(elem + 4)).expect("used len");
            (id, len)
        })
        .collect()
}

pub fn read(mem: &Mem, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    mem.read_slice(&mut buf, GuestAddress(addr)).expect("read");
    buf
}
