//! Block I/O benchmark on the first disk (the host builds a 256 MiB image):
//! sequential writes and reads of the whole disk in 64 KiB and 1 MiB
//! requests (many in flight: the driver fills the queue), then random 4 KiB
//! reads, one at a time, for `RANDOM_READS` requests. Prints one line per
//! test: `blkbench: NAME BYTES bytes in US us` (or `N requests in US us`),
//! which bench/blk.sh turns into MiB/s and IOPS. Exits 0, or 1 on an error.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::{clock, dma, id, Block};

/// Bytes per call into the driver (split into requests of the test's size).
const CHUNK: usize = 8 << 20;
/// Random 4 KiB reads per run.
const RANDOM_READS: u64 = 20_000;

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let devices = guest_virtio::init(boot);
    let Some(device) = devices.find(id::BLOCK, 0) else {
        println!("blkbench: FAIL no block device");
        return 1;
    };
    let Some(buf) = dma::alloc_buffer(CHUNK) else {
        println!("blkbench: FAIL no memory");
        return 1;
    };
    for (name, request, write) in [
        ("seq-write-64k", 64 << 10, true),
        ("seq-read-64k", 64 << 10, false),
        ("seq-write-1m", 1 << 20, true),
        ("seq-read-1m", 1 << 20, false),
    ] {
        // A fresh device per test, so each starts with the full limits.
        let mut disk = match Block::new(&device) {
            Ok(disk) => disk,
            Err(e) => {
                println!("blkbench: FAIL setting up the disk: {e}");
                return 1;
            }
        };
        disk.set_max_request(request);
        if let Err(e) = sequential(&mut disk, buf, name, write) {
            println!("blkbench: FAIL {name}: {e}");
            return 1;
        }
    }
    let mut disk = match Block::new(&device) {
        Ok(disk) => disk,
        Err(e) => {
            println!("blkbench: FAIL setting up the disk: {e}");
            return 1;
        }
    };
    if let Err(e) = random(&mut disk, &mut buf[..4096]) {
        println!("blkbench: FAIL rand-read-4k: {e}");
        return 1;
    }
    println!("blkbench: ok");
    0
}

fn sequential(
    disk: &mut Block,
    buf: &mut [u8],
    name: &str,
    write: bool,
) -> Result<(), guest_virtio::BlkError> {
    let bytes = disk.capacity() * 512;
    let start = clock::now_us();
    let mut offset = 0u64;
    while offset < bytes {
        let n = (bytes - offset).min(buf.len() as u64) as usize;
        if write {
            buf[..n].fill((offset >> 20) as u8);
            disk.write(offset / 512, &buf[..n])?;
        } else {
            disk.read(offset / 512, &mut buf[..n])?;
        }
        offset += n as u64;
    }
    if write {
        disk.flush()?;
    }
    println!(
        "blkbench: {name} {bytes} bytes in {} us",
        clock::now_us() - start
    );
    Ok(())
}

fn random(disk: &mut Block, buf: &mut [u8]) -> Result<(), guest_virtio::BlkError> {
    let blocks = disk.capacity() / 8;
    // xorshift64: the same sequence for every run and backend.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let start = clock::now_us();
    for _ in 0..RANDOM_READS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        disk.read((x % blocks) * 8, buf)?;
    }
    println!(
        "blkbench: rand-read-4k {RANDOM_READS} requests in {} us",
        clock::now_us() - start
    );
    Ok(())
}

guest_rt::entry!(main);
