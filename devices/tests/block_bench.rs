//! Single-thread read throughput of the block request logic, not a test:
//! `cargo test --release -p devices --test block_bench -- --ignored --nocapture`.
//! Reads a 256 MiB image on tmpfs (/dev/shm) through `process_queue` in
//! batches of requests, and compares with the host's own pread and with a
//! bounce buffer (pread into a Vec, then copy into guest memory).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use devices::block::{process_queue, Disk, NoInflight};
use virtio_bindings::virtio_blk::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN};
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::tempfile::TempFile;

const IMAGE: u64 = 256 << 20;
const QUEUE: u16 = 256;
const DESC: u64 = 0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;
/// Requests posted per kick.
const BATCH: u64 = 16;
/// Per-request header and status slots, then data buffers from DATA up.
const HDRS: u64 = 0x1_0000;
const DATA: u64 = 0x10_0000;
const RUNS: usize = 5;

fn image() -> TempFile {
    let image = TempFile::new_with_prefix("/dev/shm/cordon-block-bench").unwrap();
    let chunk: Vec<u8> = (0..1u64 << 20).map(|i| (i % 251) as u8).collect();
    for i in 0..IMAGE >> 20 {
        image.as_file().write_all_at(&chunk, i << 20).unwrap();
    }
    image
}

/// A ring of our own layout: virtio-queue 0.18's MockSplitQueue puts the
/// used ring `len` bytes after the avail ring's entries start, over the
/// avail ring's second half.
fn queue() -> Queue {
    let mut q = Queue::new(QUEUE).unwrap();
    q.set_size(QUEUE);
    q.try_set_desc_table_address(GuestAddress(DESC)).unwrap();
    q.try_set_avail_ring_address(GuestAddress(AVAIL)).unwrap();
    q.try_set_used_ring_address(GuestAddress(USED)).unwrap();
    q.set_ready(true);
    q
}

/// Reads the whole image through the queue in `size`-byte requests whose
/// data is split into `seg`-byte descriptors; returns the time taken.
fn through_queue(disk: &Disk, size: u64, seg: u64) -> Duration {
    let mem_size = (DATA + BATCH * size) as usize;
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), mem_size)]).unwrap();
    let per_chain = 2 + size / seg;
    let batch = BATCH.min(u64::from(QUEUE) / per_chain);
    let mut q = queue();
    let start = Instant::now();
    let mut sector = 0;
    let mut avail = 0u16;
    while sector * 512 < IMAGE {
        let mut posted = 0;
        for slot in 0..batch {
            if sector * 512 >= IMAGE {
                break;
            }
            let head = (slot * per_chain) as u16;
            let hdr = HDRS + slot * 32;
            let mut h = [0u8; 16];
            h[..4].copy_from_slice(&VIRTIO_BLK_T_IN.to_le_bytes());
            h[8..].copy_from_slice(&sector.to_le_bytes());
            mem.write_slice(&h, GuestAddress(hdr)).unwrap();
            let data = DATA + slot * size;
            let mut descs = vec![(hdr, 16, 0)];
            descs.extend((0..size / seg).map(|i| (data + i * seg, seg as u32, VRING_DESC_F_WRITE)));
            descs.push((hdr + 16, 1, VRING_DESC_F_WRITE));
            for (i, &(addr, len, flags)) in descs.iter().enumerate() {
                let idx = head + i as u16;
                let next = if i + 1 < descs.len() {
                    VRING_DESC_F_NEXT
                } else {
                    0
                };
                let d = Descriptor::new(addr, len, (flags | next) as u16, idx + 1);
                let d = RawDescriptor::from(d);
                mem.write_obj(d, GuestAddress(DESC + 16 * u64::from(idx)))
                    .unwrap();
            }
            let entry = AVAIL + 4 + 2 * u64::from(avail % QUEUE);
            mem.write_obj(head, GuestAddress(entry)).unwrap();
            avail = avail.wrapping_add(1);
            posted += 1;
            sector += size / 512;
        }
        mem.write_obj(avail, GuestAddress(AVAIL + 2)).unwrap();
        process_queue(&mut q, &mem, disk, &mut NoInflight).unwrap();
        for slot in 0..posted {
            let status: u8 = mem.read_obj(GuestAddress(HDRS + slot * 32 + 16)).unwrap();
            assert_eq!(status, VIRTIO_BLK_S_OK as u8);
        }
    }
    start.elapsed()
}

/// pread into a Vec, then (if `copy`) into guest memory.
fn pread_loop(file: &File, size: u64, copy: bool) -> Duration {
    let mem: GuestMemoryMmap =
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size as usize)]).unwrap();
    let mut buf = vec![0u8; size as usize];
    let start = Instant::now();
    for off in (0..IMAGE).step_by(size as usize) {
        file.read_exact_at(&mut buf, off).unwrap();
        if copy {
            mem.write_slice(&buf, GuestAddress(0)).unwrap();
        }
    }
    start.elapsed()
}

fn mib_s(runs: &mut [Duration]) -> f64 {
    runs.sort();
    (IMAGE >> 20) as f64 / runs[runs.len() / 2].as_secs_f64()
}

fn median(mut f: impl FnMut() -> Duration) -> f64 {
    let mut runs: Vec<_> = (0..RUNS).map(|_| f()).collect();
    mib_s(&mut runs)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn read_throughput() {
    let image = image();
    let disk = Disk::new(image.as_file().try_clone().unwrap(), true, None).unwrap();
    println!("256 MiB from tmpfs, single thread, median of {RUNS}, MiB/s");
    for size in [4096, 64 << 10, 1 << 20] {
        let host = median(|| pread_loop(image.as_file(), size, false));
        let bounce = median(|| pread_loop(image.as_file(), size, true));
        let one = median(|| through_queue(&disk, size, size));
        let seg = (size / 64).max(4096);
        let split = median(|| through_queue(&disk, size, seg));
        println!(
            "{:>4} KiB requests: host pread {host:>5.0}  bounce {bounce:>5.0}  \
             cordon: 1 segment {one:>5.0}, {:>2} KiB segments {split:>5.0}",
            size >> 10,
            seg >> 10,
        );
    }
}
