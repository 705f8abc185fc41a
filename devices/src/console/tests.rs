use std::collections::VecDeque;
use std::io::{self, Read, Write};

use vhost_user_backend::VhostUserBackendMut;
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::QueueT;

use super::stream::{receive, transmit, Inbox, Output, Received, INPUT_CHUNK};
use super::ConsoleBackend;
use crate::serve::queue::Mem;
use crate::serve::testing::*;

/// Host input: one scripted result per read, then end of input.
#[derive(Default)]
struct Script {
    reads: VecDeque<io::Result<Vec<u8>>>,
    count: usize,
}

impl Script {
    fn new(reads: Vec<io::Result<Vec<u8>>>) -> Self {
        Script {
            reads: reads.into(),
            count: 0,
        }
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.count += 1;
        match self.reads.pop_front() {
            None => Ok(0),
            Some(Err(e)) => Err(e),
            Some(Ok(data)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
        }
    }
}

/// A sink that fails every write, like a pipe nobody reads any more.
struct Closed;

impl Write for Closed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_guest(mem: &Mem, addr: u64, data: &[u8]) {
    vm_memory::Bytes::write_slice(mem, data, vm_memory::GuestAddress(addr)).unwrap();
}

#[test]
fn transmit_writes_each_chain_in_order() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    write_guest(&mem, BUFFERS, b"hello, ");
    write_guest(&mem, BUFFERS + 0x100, b"world");
    write_guest(&mem, BUFFERS + 0x200, b"!\n");
    post(
        &vq,
        0,
        &[
            desc(BUFFERS, 7, NEXT, 1),
            desc(BUFFERS + 0x100, 5, 0, 0),
            desc(BUFFERS + 0x200, 2, 0, 0),
        ],
    );
    let mut out = Output::new(Vec::new());
    assert!(transmit(&mut q, &mem, &mut out).unwrap());
    assert_eq!(used(&mem), vec![(0, 0), (2, 0)]);
    assert_eq!(out.sink(), b"hello, world!\n");
}

#[test]
fn transmit_skips_bad_chains_whole() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    write_guest(&mem, BUFFERS, b"good");
    post(
        &vq,
        0,
        &[
            // a device-writable buffer on the transmitq
            desc(BUFFERS, 4, NEXT, 1),
            desc(BUFFERS, 4, WRITE, 0),
            // past the end of guest memory
            desc(MEM_SIZE as u64 - 2, 4, 0, 0),
            // a loop
            desc(BUFFERS, 4, NEXT, 4),
            desc(BUFFERS, 4, NEXT, 3),
        ],
    );
    post(&vq, 5, &[desc(BUFFERS, 4, 0, 0)]);
    let mut out = Output::new(Vec::new());
    transmit(&mut q, &mem, &mut out).unwrap();
    assert_eq!(used(&mem), vec![(0, 0), (2, 0), (3, 0), (5, 0)]);
    assert_eq!(out.sink(), b"good");
}

#[test]
fn transmit_drops_output_once_the_sink_fails_and_keeps_completing() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    post(&vq, 0, &[desc(BUFFERS, 4, 0, 0), desc(BUFFERS, 4, 0, 0)]);
    let mut out = Output::new(Closed);
    transmit(&mut q, &mem, &mut out).unwrap();
    assert_eq!(used(&mem), vec![(0, 0), (1, 0)]);
}

#[test]
fn no_receive_buffer_means_no_read() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let mut inbox = Inbox::new(Script::new(vec![Ok(b"typed".to_vec())]));
    inbox.readable = true;
    let got = receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!(got, Received::default());
    assert_eq!(inbox.source().count, 0);
}

#[test]
fn one_read_per_readiness_and_only_with_a_buffer() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let script = Script::new(vec![Ok(b"ab".to_vec()), Ok(b"cd".to_vec())]);
    let mut inbox = Inbox::new(script);
    post(
        &vq,
        0,
        &[
            desc(BUFFERS, 16, WRITE, 0),
            desc(BUFFERS + 16, 16, WRITE, 0),
        ],
    );
    // A buffer but no readiness yet: watch the fd.
    let got = receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!((got.used, got.wants_input), (false, true));
    inbox.readable = true;
    let got = receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!((got.used, got.wants_input), (true, true));
    assert_eq!(inbox.source().count, 1);
    assert_eq!(used(&mem), vec![(0, 2)]);
    assert_eq!(read(&mem, BUFFERS, 2), b"ab");
}

#[test]
fn input_beyond_the_buffers_waits_for_the_next_buffer() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    q.set_event_idx(true);
    let mut inbox = Inbox::new(Script::new(vec![Ok(b"0123456789".to_vec())]));
    inbox.readable = true;
    post(&vq, 0, &[desc(BUFFERS, 4, WRITE, 0)]);
    let got = receive(&mut q, &mem, &mut inbox).unwrap();
    // Input is pending: stop watching the fd, and have the driver's next
    // buffer kick the queue.
    assert_eq!((got.used, got.wants_input), (true, false));
    assert_eq!(avail_event(&mem), 1);
    inbox.readable = true;
    post(&vq, 1, &[desc(BUFFERS + 0x100, 64, WRITE, 0)]);
    let got = receive(&mut q, &mem, &mut inbox).unwrap();
    assert!(got.used);
    assert_eq!(used(&mem), vec![(0, 4), (1, 6)]);
    assert_eq!(read(&mem, BUFFERS, 4), b"0123");
    assert_eq!(read(&mem, BUFFERS + 0x100, 6), b"456789");
    // No buffer left: no second read, and the fd is not watched.
    assert_eq!(inbox.source().count, 1);
    assert!(!inbox.eof && !got.wants_input);
}

#[test]
fn a_bad_receive_buffer_gets_nothing_and_the_input_stays() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let mut inbox = Inbox::new(Script::new(vec![Ok(b"keep".to_vec())]));
    inbox.readable = true;
    post(
        &vq,
        0,
        &[
            desc(BUFFERS, 16, 0, 0),                    // device-readable
            desc(MEM_SIZE as u64 - 2, 16, WRITE, 0),    // outside memory
            desc(BUFFERS + 0x100, 16, WRITE | NEXT, 2), // a loop onto itself
        ],
    );
    post(&vq, 3, &[desc(BUFFERS + 0x200, 16, WRITE, 0)]);
    receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!(used(&mem), vec![(0, 0), (1, 0), (2, 0), (3, 4)]);
    assert_eq!(read(&mem, BUFFERS, 4), vec![0; 4]);
    assert_eq!(read(&mem, BUFFERS + 0x200, 4), b"keep");
}

#[test]
fn unpollable_input_is_read_while_buffers_last() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let chunks = (0..4).map(|i| Ok(vec![b'a' + i; 8])).collect();
    let mut inbox = Inbox::new(Script::new(chunks));
    inbox.always_readable = true;
    inbox.readable = true;
    post(
        &vq,
        0,
        &[desc(BUFFERS, 8, WRITE, 0), desc(BUFFERS + 8, 8, WRITE, 0)],
    );
    let got = receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!((got.used, got.wants_input), (true, false));
    assert_eq!(read(&mem, BUFFERS, 16), b"aaaaaaaabbbbbbbb");
    // Two reads, two buffers: nothing read ahead.
    assert_eq!(inbox.source().count, 2);
}

#[test]
fn a_read_error_ends_the_input_but_interrupts_do_not() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let script = Script::new(vec![
        Err(io::Error::from(io::ErrorKind::Interrupted)),
        Ok(b"x".to_vec()),
        Err(io::Error::other("gone")),
    ]);
    let mut inbox = Inbox::new(script);
    inbox.always_readable = true;
    inbox.readable = true;
    post(
        &vq,
        0,
        &[desc(BUFFERS, 8, WRITE, 0), desc(BUFFERS + 8, 8, WRITE, 0)],
    );
    receive(&mut q, &mem, &mut inbox).unwrap();
    // The byte, then the end of input told once: the next buffer used with
    // length 0.
    assert_eq!(used(&mem), vec![(0, 1), (1, 0)]);
    assert!(inbox.eof && inbox.eof_sent);
    post(&vq, 2, &[desc(BUFFERS + 16, 8, WRITE, 0)]);
    receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!(used(&mem).len(), 2);
}

#[test]
fn input_chunk_bounds_what_is_held() {
    let mem = memory();
    let vq = MockSplitQueue::new(&mem, QUEUE_SIZE);
    let mut q = queue(&vq);
    let mut inbox = Inbox::new(Script::new(vec![Ok(vec![7; 4 * INPUT_CHUNK])]));
    inbox.readable = true;
    post(&vq, 0, &[desc(BUFFERS, 0x2_0000, WRITE, 0)]);
    receive(&mut q, &mem, &mut inbox).unwrap();
    assert_eq!(used(&mem), vec![(0, INPUT_CHUNK as u32)]);
}

#[test]
fn config_space_reads_are_range_checked() {
    let dev = ConsoleBackend::new(tempfile(), None);
    assert_eq!(dev.get_config(0, 12), vec![0; 12]);
    assert_eq!(dev.get_config(8, 4), vec![0; 4]);
    assert_eq!(dev.get_config(12, 0), Vec::<u8>::new());
    assert!(dev.get_config(10, 4).is_empty());
    assert!(dev.get_config(u32::MAX, 2).is_empty());
    assert!(dev.get_config(4, u32::MAX).is_empty());
}

fn tempfile() -> std::fs::File {
    std::fs::File::open("/dev/null").unwrap()
}
