//! Checks the first virtio-blk disk end to end, in large requests:
//!
//! 1. reads the whole disk and verifies the pattern the host wrote before
//!    boot (skipped with the argument `no-host-pattern`),
//! 2. writes the guest pattern over the whole disk,
//! 3. flushes,
//! 4. reads the whole disk back and verifies the guest pattern.
//!
//! The patterns, so a host test can write the first and check the second:
//! - host pattern: sector N (512 bytes) starts with the little-endian u64
//!   `N ^ HOST_MAGIC`; its other 504 bytes are zero.
//! - guest pattern: the little-endian u64 at byte offset `off` (every
//!   multiple of 8) is `off ^ GUEST_MAGIC`.
//!
//! With the argument `hold-after-flush` it stops after step 3 and waits.
//!
//! Checksums are FNV-1a over the disk's little-endian u64 words in order:
//! `h = 0xcbf2_9ce4_8422_2325; for w { h = (h ^ w) * 0x100_0000_01b3 }`
//! (wrapping). Ends with `blkcheck: ok` (exit 0) or `blkcheck: FAIL ...`
//! (exit 1).
#![no_std]
#![no_main]

mod pattern;

use guest_rt::{boot, println, BootInfo};
use guest_virtio::{clock, dma, id, Block};
use pattern::{Checksum, Pattern};

/// Bytes per pass of the loop: split by the driver into requests of up to
/// 1 MiB that are in flight together.
const CHUNK: usize = 4 << 20;
/// `main`'s statuses.
const OK: u32 = 0;
const FAIL: u32 = 1;

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let devices = guest_virtio::init(boot);
    let check_host = !boot::argv(boot).iter().any(|a| a == b"no-host-pattern");
    let hold = boot::argv(boot).iter().any(|a| a == b"hold-after-flush");
    let Some(device) = devices.find(id::BLOCK, 0) else {
        println!("blkcheck: FAIL no block device");
        return FAIL;
    };
    let mut disk = match Block::new(&device) {
        Ok(disk) => disk,
        Err(e) => {
            println!("blkcheck: FAIL setting up the disk: {e}");
            return FAIL;
        }
    };
    describe(&mut disk);
    let bytes = disk.capacity() * 512;
    let chunk = (bytes.min(CHUNK as u64) as usize).max(512);
    let Some(buf) = dma::alloc_buffer(chunk) else {
        println!("blkcheck: FAIL no memory for a {chunk}-byte buffer");
        return FAIL;
    };
    match run(&mut disk, buf, check_host, hold) {
        Ok(()) => {
            println!("blkcheck: ok");
            OK
        }
        Err(Failed) => FAIL,
    }
}

/// A failure, already printed.
struct Failed;

/// Prints a FAIL line and gives up.
macro_rules! fail {
    ($($arg:tt)*) => {{
        println!("blkcheck: FAIL {}", format_args!($($arg)*));
        return Err(Failed);
    }};
}

/// Prints the disk's size, features and id.
fn describe(disk: &mut Block) {
    let (offered, acked) = disk.features();
    println!(
        "blkcheck: disk of {} sectors ({} bytes), read-only {}, flush {}, features offered {offered:#x} acked {acked:#x}, queue {}, requests up to {} bytes",
        disk.capacity(),
        disk.capacity() * 512,
        disk.read_only(),
        disk.has_flush(),
        disk.queue_size(),
        disk.limits().request,
    );
    match disk.get_id() {
        Ok(id) => {
            let len = id.iter().position(|&b| b == 0).unwrap_or(id.len());
            let text = core::str::from_utf8(&id[..len]).unwrap_or("(not UTF-8)");
            println!("blkcheck: id {text:?}");
        }
        Err(e) => println!("blkcheck: get-id: {e}"),
    }
}

/// With `hold` (argument `hold-after-flush`), stops after the flush and
/// waits forever, for a host test that kills the backend at that point.
fn run(disk: &mut Block, buf: &mut [u8], check_host: bool, hold: bool) -> Result<(), Failed> {
    let bytes = disk.capacity() * 512;
    if check_host {
        let sum = read_and_verify(disk, buf, Pattern::Host)?;
        println!("blkcheck: host pattern ok over {bytes} bytes, checksum {sum:#018x}");
    } else {
        println!("blkcheck: host pattern not checked");
    }
    let start = clock::now_us();
    let mut written = Checksum::new();
    let mut offset = 0u64;
    while offset < bytes {
        let n = (bytes - offset).min(buf.len() as u64) as usize;
        Pattern::Guest.fill(offset, &mut buf[..n]);
        written.add(&buf[..n]);
        if let Err(e) = disk.write(offset / 512, &buf[..n]) {
            fail!("writing at byte {offset}: {e}");
        }
        offset += n as u64;
    }
    let written = written.value();
    println!(
        "blkcheck: wrote {bytes} bytes, checksum {written:#018x} ({})",
        rate(bytes, start)
    );
    match disk.flush() {
        Ok(true) => println!("blkcheck: flushed"),
        Ok(false) => println!("blkcheck: flush not negotiated (write-through disk)"),
        Err(e) => fail!("flushing: {e}"),
    }
    if hold {
        println!("blkcheck: holding");
        loop {
            guest_rt::wait(guest_rt::abi::WAIT_FOREVER);
        }
    }
    let read = read_and_verify(disk, buf, Pattern::Guest)?;
    println!("blkcheck: read back {bytes} bytes, checksum {read:#018x}");
    if read != written {
        fail!("checksum read back {read:#x} is not the one written {written:#x}");
    }
    Ok(())
}

/// Reads the whole disk, checks it holds `pattern`, returns its checksum.
fn read_and_verify(disk: &mut Block, buf: &mut [u8], pattern: Pattern) -> Result<u64, Failed> {
    let bytes = disk.capacity() * 512;
    let start = clock::now_us();
    let mut sum = Checksum::new();
    let mut offset = 0u64;
    while offset < bytes {
        let n = (bytes - offset).min(buf.len() as u64) as usize;
        if let Err(e) = disk.read(offset / 512, &mut buf[..n]) {
            fail!("reading at byte {offset}: {e}");
        }
        if let Some((at, got, want)) = pattern.mismatch(offset, &buf[..n]) {
            fail!(
                "{} pattern: the word at byte {at} (sector {}) is {got:#018x}, expected {want:#018x}",
                pattern.name(),
                at / 512
            );
        }
        sum.add(&buf[..n]);
        offset += n as u64;
    }
    println!(
        "blkcheck: read {bytes} bytes ({} pattern, {})",
        pattern.name(),
        rate(bytes, start)
    );
    Ok(sum.value())
}

/// "N ms, M MiB/s" since `start` (microseconds).
fn rate(bytes: u64, start: u64) -> impl core::fmt::Display {
    let us = clock::now_us().saturating_sub(start).max(1);
    let mib_s = bytes * 1_000_000 / us / (1 << 20);
    Rate(us / 1000, mib_s)
}

struct Rate(u64, u64);

impl core::fmt::Display for Rate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ms, {} MiB/s", self.0, self.1)
    }
}

guest_rt::entry!(main);
