//! Hostile chains: each request fails (IOERR if it has a status byte,
//! otherwise returned untouched), nothing panics, and the queue keeps
//! serving the next request.

use super::*;
use crate::block::request::MAX_DESCRIPTORS;
use virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT;
use vm_memory::Address;

fn raw(addr: u64, len: u32, flags: u32, next: u16) -> RawDescriptor {
    RawDescriptor::from(SplitDescriptor::new(addr, len, flags as u16, next))
}

const NEXT: u32 = VRING_DESC_F_NEXT;
const WRITE: u32 = VRING_DESC_F_WRITE;

#[test]
fn broken_chains_without_status_are_returned_unanswered() {
    let rig = Rig::new(4096, false);
    rig.header(VIRTIO_BLK_T_IN, 0);
    let cases: Vec<(&str, Vec<RawDescriptor>)> = vec![
        (
            "loop",
            vec![raw(HDR, 16, NEXT, 1), raw(DATA, 512, WRITE | NEXT, 0)],
        ),
        (
            "next outside the queue",
            vec![raw(HDR, 16, NEXT, QUEUE + 3)],
        ),
        (
            "status readable",
            vec![raw(HDR, 16, NEXT, 1), raw(STATUS, 1, 0, 0)],
        ),
        (
            "status empty",
            vec![raw(HDR, 16, NEXT, 1), raw(STATUS, 0, WRITE, 0)],
        ),
        (
            "status outside memory",
            vec![raw(HDR, 16, NEXT, 1), raw(MEM_SIZE, 1, WRITE, 0)],
        ),
        (
            "status address overflows",
            vec![raw(HDR, 16, NEXT, 1), raw(u64::MAX, 2, WRITE, 0)],
        ),
        (
            "indirect table outside memory",
            vec![raw(MEM_SIZE, 64, VRING_DESC_F_INDIRECT, 0)],
        ),
    ];
    for (what, table) in cases {
        let used = rig.run_raw(&table, &[0]);
        assert_eq!((used.count, used.len, used.status), (1, 0, 0xff), "{what}");
    }
    rig.assert_reads_sector_0();
}

#[test]
fn malformed_requests_with_a_status_byte_get_ioerr() {
    let rig = Rig::new(4096, false);
    let cases: Vec<(&str, Vec<RawDescriptor>)> = vec![
        (
            "data outside memory",
            vec![
                rig.header(VIRTIO_BLK_T_IN, 0),
                desc(MEM_SIZE - 256, 512, true),
                status_desc(),
            ],
        ),
        (
            "data address overflows",
            vec![
                rig.header(VIRTIO_BLK_T_OUT, 0),
                desc(u64::MAX - 100, 512, false),
                status_desc(),
            ],
        ),
        (
            "readable after writable",
            vec![
                rig.header(VIRTIO_BLK_T_OUT, 0),
                desc(DATA, 512, true),
                desc(DATA, 512, false),
                status_desc(),
            ],
        ),
        ("short header", vec![desc(HDR, 8, false), status_desc()]),
        ("no header", vec![status_desc()]),
        (
            "data in the wrong direction",
            vec![
                rig.header(VIRTIO_BLK_T_OUT, 0),
                desc(DATA, 100, false),
                status_desc(),
            ],
        ),
    ];
    for (what, table) in cases {
        let used = rig.run(&table);
        assert_eq!((used.count, used.len, used.status), (1, 1, IOERR), "{what}");
    }
    rig.assert_reads_sector_0();
}

#[test]
fn chain_longer_than_allowed_fails() {
    // An indirect table with more descriptors than any request may have.
    let rig = Rig::new(1 << 20, false);
    let n = MAX_DESCRIPTORS + 1;
    let table = GuestAddress(0x20_0000);
    rig.header(VIRTIO_BLK_T_IN, 0);
    let mut entries = vec![raw(HDR, 16, NEXT, 1)];
    for i in 1..n - 1 {
        entries.push(raw(DATA + 512 * i as u64, 512, WRITE | NEXT, i as u16 + 1));
    }
    entries.push(raw(STATUS, 1, WRITE, 0));
    for (i, e) in entries.iter().enumerate() {
        rig.mem
            .write_obj(*e, table.unchecked_add(16 * i as u64))
            .unwrap();
    }
    let head = raw(table.0, 16 * n as u32, VRING_DESC_F_INDIRECT, 0);
    let used = rig.run_raw(&[head], &[0]);
    assert_eq!((used.len, used.status), (1, IOERR));

    // One fewer is a valid request.
    entries.remove(n - 2);
    entries[n - 3] = raw(DATA + 512 * (n as u64 - 3), 512, WRITE | NEXT, n as u16 - 2);
    for (i, e) in entries.iter().enumerate() {
        rig.mem
            .write_obj(*e, table.unchecked_add(16 * i as u64))
            .unwrap();
    }
    let head = raw(table.0, 16 * (n as u32 - 1), VRING_DESC_F_INDIRECT, 0);
    let used = rig.run_raw(&[head], &[0]);
    assert_eq!(used.status, OK);
}

#[test]
fn bad_heads_and_avail_indices_are_survived() {
    let rig = Rig::new(4096, false);
    // A head index outside the queue: skipped, the next head is served.
    let table = [rig.header(VIRTIO_BLK_T_FLUSH, 0), status_desc()];
    let table = [raw(HDR, 16, NEXT, 1), table[1]];
    let used = rig.run_raw(&table, &[QUEUE + 1, 0]);
    assert_eq!((used.count, used.status), (1, OK));

    // avail idx far ahead of what the queue can hold: nothing is processed.
    let (vq, mut q) = rig.offer(&table, &[0]);
    vq.avail().idx().store(u16::to_le(QUEUE + 5));
    assert!(process_queue(&mut q, &rig.mem, &rig.disk, &mut NoInflight).is_err());
    assert_eq!(vq.used().idx().load(), 0);

    // Rings outside memory: nothing is processed.
    let (_vq, mut q) = rig.offer(&table, &[0]);
    q.set_used_ring_address(Some(MEM_SIZE as u32 - 8), Some(0));
    assert!(process_queue(&mut q, &rig.mem, &rig.disk, &mut NoInflight).is_err());
    rig.assert_reads_sector_0();
}

/// Checks that each request is recorded before and cleared after it is
/// published.
#[derive(Default)]
struct Recorder {
    open: Vec<u16>,
    events: Vec<(bool, u16, u16)>,
}

impl InflightLog for Recorder {
    fn begin(&mut self, head: u16) {
        assert!(!self.open.contains(&head));
        self.open.push(head);
        self.events.push((true, head, 0));
    }
    fn complete(&mut self, head: u16, used_idx: u16) {
        self.open.retain(|h| *h != head);
        self.events.push((false, head, used_idx));
    }
}

#[test]
fn inflight_hooks_bracket_each_request() {
    let rig = Rig::new(4096, false);
    rig.header(VIRTIO_BLK_T_FLUSH, 0);
    let table = [
        raw(HDR, 16, NEXT, 1),
        raw(STATUS, 1, WRITE, 0),
        raw(HDR, 16, NEXT, 3),
        raw(STATUS, 1, WRITE, 0),
    ];
    let mut log = Recorder::default();
    let used = rig.run_with(&table, &[0, 2], &mut log);
    assert_eq!(used.count, 2);
    assert!(log.open.is_empty());
    assert_eq!(
        log.events,
        [(true, 0, 0), (false, 0, 1), (true, 2, 0), (false, 2, 2)]
    );
}

#[test]
fn event_idx_suppresses_interrupts_the_driver_did_not_ask_for() {
    let rig = Rig::new(4096, false);
    let table = [rig.header(VIRTIO_BLK_T_FLUSH, 0), status_desc()];
    let table = [raw(HDR, 16, NEXT, 1), table[1]];
    let (vq, mut q) = rig.offer(&table, &[0]);
    q.set_event_idx(true);
    // used_event (after the avail ring's entries) = 5: no interrupt wanted yet.
    let used_event = vq.avail_addr().unchecked_add(4 + 2 * u64::from(QUEUE));
    rig.mem.write_obj(5u16.to_le(), used_event).unwrap();
    assert!(!process_queue(&mut q, &rig.mem, &rig.disk, &mut NoInflight).unwrap());
    assert_eq!(vq.used().idx().load(), 1);
    // avail_event was published so the driver knows where to kick next.
    let avail_event = vq.used_addr().unchecked_add(4 + 8 * u64::from(QUEUE));
    assert_eq!(rig.mem.read_obj::<u16>(avail_event).unwrap(), 1);

    let (_vq, mut q) = rig.offer(&table, &[0]);
    q.set_event_idx(true);
    assert!(process_queue(&mut q, &rig.mem, &rig.disk, &mut NoInflight).unwrap());
}
