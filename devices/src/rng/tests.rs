use std::io;

use virtio_queue::mock::MockSplitQueue;
use virtio_queue::QueueT;

use super::{getrandom, process_queue, MAX_REQUEST};
use crate::serve::queue::QueueError;
use crate::serve::testing::*;

const PATTERN: u8 = 0xa5;

fn pattern(buf: &mut [u8]) -> io::Result<()> {
    buf.fill(PATTERN);
    Ok(())
}

#[test]
fn fills_every_writable_buffer_of_a_chain() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    post(
        &vq,
        0,
        &[
            desc(BUFFERS, 100, WRITE | NEXT, 1),
            desc(BUFFERS + 0x1000, 28, WRITE, 0),
        ],
    );
    assert!(process_queue(&mut q, &mem, pattern).unwrap());
    assert_eq!(used(&mem), vec![(0, 128)]);
    assert_eq!(
        read(&mem, BUFFERS, 101),
        [vec![PATTERN; 100], vec![0]].concat()
    );
    assert_eq!(read(&mem, BUFFERS + 0x1000, 28), vec![PATTERN; 28]);
}

#[test]
fn caps_a_request_at_64_kib() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    post(&vq, 0, &[desc(BUFFERS, 0x2_0000, WRITE, 0)]);
    process_queue(&mut q, &mem, pattern).unwrap();
    assert_eq!(used(&mem), vec![(0, MAX_REQUEST as u32)]);
    let data = read(&mem, BUFFERS, MAX_REQUEST + 1);
    assert!(data[..MAX_REQUEST].iter().all(|&b| b == PATTERN));
    assert_eq!(data[MAX_REQUEST], 0);
}

#[test]
fn bad_chains_get_nothing_and_the_next_request_is_served() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let out_of_memory = MEM_SIZE as u64 - 8;
    post(
        &vq,
        0,
        &[
            // 0: a device-readable buffer in the chain
            desc(BUFFERS, 16, WRITE | NEXT, 1),
            desc(BUFFERS + 16, 16, 0, 0),
            // 2: a buffer running past the end of guest memory
            desc(out_of_memory, 16, WRITE, 0),
            // 3: a loop 3 -> 4 -> 3
            desc(BUFFERS + 0x100, 16, WRITE | NEXT, 4),
            desc(BUFFERS + 0x200, 16, WRITE | NEXT, 3),
        ],
    );
    // 5: next index beyond the queue; 6: a good request
    post(&vq, 5, &[desc(BUFFERS + 0x300, 16, WRITE | NEXT, 40)]);
    post(&vq, 6, &[desc(BUFFERS + 0x400, 16, WRITE, 0)]);
    process_queue(&mut q, &mem, pattern).unwrap();
    assert_eq!(used(&mem), vec![(0, 0), (2, 0), (3, 0), (5, 0), (6, 16)]);
    assert_eq!(read(&mem, BUFFERS, 32), vec![0; 32]);
    assert_eq!(read(&mem, BUFFERS + 0x100, 16), vec![0; 16]);
    assert_eq!(read(&mem, BUFFERS + 0x400, 16), vec![PATTERN; 16]);
}

#[test]
fn a_head_out_of_range_is_dropped() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    post_head(&vq, &mem, 999);
    post(&vq, 0, &[desc(BUFFERS, 8, WRITE, 0)]);
    process_queue(&mut q, &mem, pattern).unwrap();
    assert_eq!(used(&mem), vec![(0, 8)]);
}

#[test]
fn rings_outside_memory_stop_the_queue_without_panicking() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    post(&vq, 0, &[desc(BUFFERS, 8, WRITE, 0)]);
    q.set_desc_table_address(Some(0xfff0_0000), Some(0));
    let err = process_queue(&mut q, &mem, pattern).unwrap_err();
    assert!(matches!(err, QueueError::RingOutsideMemory), "{err}");
    assert_eq!(read(&mem, BUFFERS, 8), vec![0; 8]);
}

#[test]
fn an_avail_index_far_ahead_is_a_broken_ring() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    vq.avail().idx().store(QUEUE_SIZE + 1);
    let err = process_queue(&mut q, &mem, pattern).unwrap_err();
    assert!(matches!(err, QueueError::Queue(_)), "{err}");
    assert!(used(&mem).is_empty());
}

#[test]
fn a_failing_source_ends_the_request_short() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    post(&vq, 0, &[desc(BUFFERS, 8, WRITE, 0)]);
    let fail = |_: &mut [u8]| Err(io::Error::other("no entropy"));
    process_queue(&mut q, &mem, fail).unwrap();
    assert_eq!(used(&mem), vec![(0, 0)]);
}

#[test]
fn event_idx_notifies_only_when_the_driver_asks() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    q.set_event_idx(true);
    set_used_event(&vq, &mem, 1);
    post(&vq, 0, &[desc(BUFFERS, 8, WRITE, 0)]);
    assert!(!process_queue(&mut q, &mem, pattern).unwrap());
    post(&vq, 1, &[desc(BUFFERS, 8, WRITE, 0)]);
    assert!(process_queue(&mut q, &mem, pattern).unwrap());
    assert_eq!(used(&mem), vec![(0, 8), (1, 8)]);
    // The device asks for a kick at the next chain.
    assert_eq!(avail_event(&mem), 2);
}

#[test]
fn getrandom_fills_large_buffers() {
    let mut buf = vec![0u8; 1 << 20];
    getrandom(&mut buf).unwrap();
    assert!(buf.chunks(64).all(|c| c.iter().any(|&b| b != 0)));
}

#[test]
fn indirect_tables_are_followed_and_checked() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let table = BUFFERS + 0x8000;
    let entries = [
        desc(BUFFERS, 8, WRITE | NEXT, 1),
        desc(BUFFERS + 0x100, 8, WRITE, 0),
        // a second table whose entry loops onto itself
        desc(BUFFERS + 0x200, 8, WRITE | NEXT, 0),
    ];
    for (i, entry) in entries.iter().enumerate() {
        vm_memory::Bytes::write_obj(&mem, *entry, vm_memory::GuestAddress(table + 16 * i as u64))
            .unwrap();
    }
    post(&vq, 0, &[desc(table, 32, INDIRECT, 0)]);
    post(&vq, 1, &[desc(table + 32, 16, INDIRECT, 0)]);
    // an indirect descriptor whose table is not a whole number of entries
    post(&vq, 2, &[desc(table, 20, INDIRECT, 0)]);
    process_queue(&mut q, &mem, pattern).unwrap();
    assert_eq!(used(&mem), vec![(0, 16), (1, 0), (2, 0)]);
    assert_eq!(read(&mem, BUFFERS + 0x100, 8), vec![PATTERN; 8]);
    assert_eq!(read(&mem, BUFFERS + 0x200, 8), vec![0; 8]);
}
