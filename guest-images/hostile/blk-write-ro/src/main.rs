//! Writes to the first block device, which the host attached read-only
//! (`--disk FILE,ro`): one sector at sector 0, then 64 KiB at sector 8,
//! then a flush, printing the status each got (expected: IOERR for the
//! writes). It reads the first 136 sectors before and after and prints
//! whether they changed (they must not). Prints `blk-write-ro: done, not
//! stopped` and exits 0; 3 without a block device, 1 if setup fails.
//!
//! Lines: `blk-write-ro: read-only flag R, features offered 0x.. acked 0x..`,
//! `blk-write-ro: write of 1 sector at 0: status 1 (IOERR)` (or `: ok`,
//! or the driver's error), the same for `64 KiB at sector 8`,
//! `blk-write-ro: flush: ...`, `blk-write-ro: first N sectors unchanged`
//! (or `CHANGED`).
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::{dma, id, BlkError, Block};
use virtq_kit::{setup_failed, survived, NO_DEVICE};

const NAME: &str = "blk-write-ro";
/// Sectors compared before and after: the two writes' range.
const CHECKED: u64 = 8 + 128;

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let devices = guest_virtio::init(boot);
    let Some(device) = devices.find(id::BLOCK, 0) else {
        println!("{NAME}: no block device");
        return NO_DEVICE;
    };
    let mut disk = match Block::new(&device) {
        Ok(disk) => disk,
        Err(e) => return setup_failed(NAME, e),
    };
    let (offered, acked) = disk.features();
    println!(
        "{NAME}: read-only flag {}, features offered {offered:#x} acked {acked:#x}",
        disk.read_only()
    );
    let sectors = CHECKED.min(disk.capacity());
    let bytes = sectors as usize * 512;
    let (Some(before), Some(after), Some(junk)) = (
        dma::alloc_buffer(bytes),
        dma::alloc_buffer(bytes),
        dma::alloc_buffer(64 << 10),
    ) else {
        println!("{NAME}: FAIL out of memory");
        return 1;
    };
    junk.fill(0xA5);
    if let Err(e) = disk.read(0, before) {
        println!("{NAME}: reading the first {sectors} sectors before: {e}");
    }
    let one = disk.write(0, &junk[..512]);
    print_result("write of 1 sector at 0", one);
    if disk.capacity() >= CHECKED {
        let many = disk.write(8, junk);
        print_result("write of 64 KiB at sector 8", many);
    }
    match disk.flush() {
        Ok(false) => println!("{NAME}: flush: not negotiated"),
        result => print_result("flush", result.map(|_| ())),
    }
    match disk.read(0, after) {
        Ok(()) if before == after => println!("{NAME}: first {sectors} sectors unchanged"),
        Ok(()) => println!("{NAME}: first {sectors} sectors CHANGED"),
        Err(e) => println!("{NAME}: reading the first {sectors} sectors after: {e}"),
    }
    survived(NAME)
}

fn print_result(what: &str, result: Result<(), BlkError>) {
    match result {
        Ok(()) => println!("{NAME}: {what}: ok"),
        Err(BlkError::Status { status, .. }) => println!(
            "{NAME}: {what}: status {status} ({})",
            guest_virtio::blk_proto::status_name(status)
        ),
        Err(e) => println!("{NAME}: {what}: {e}"),
    }
}

guest_rt::entry!(main);
