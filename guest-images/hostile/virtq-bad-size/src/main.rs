//! Programs the target device's request queue (see `virtq-kit` for the
//! choice of device) with bad sizes, one reset each: QueueNum 0, 3 and 100
//! (not powers of two), QueueNumMax + 1, 65536 (past 16 bits) and
//! 0xffff_ffff. Each time it reads QueueReady back, sets DRIVER_OK, prints
//! Status, then publishes a valid request anyway and reports what came
//! back. Its rings have room for 32768 entries, so a device that took a
//! size up to that stays inside them.
//!
//! See `virtq-kit` for the choice of device and the frame around the
//! cases.
#![no_std]
#![no_main]

use guest_rt::abi::PAGE_SIZE;
use guest_rt::{println, BootInfo};
use guest_virtio::ring::{Layout, MAX_QUEUE_SIZE};
use guest_virtio::{dma, Transport, VirtioError, Virtqueue};
use virtq_kit::{Kind, Session, Target};

const NAME: &str = "virtq-bad-size";

/// Rings with room for 32768 entries: descriptors, then the available
/// ring at 512 KiB, the used ring at 640 KiB.
const RINGS: Layout = Layout {
    size: MAX_QUEUE_SIZE,
    desc: 0,
    avail: 0x8_0000,
    used: 0xA_0000,
    total: 0xE_0000,
};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    virtq_kit::cases(NAME, boot, 6, try_size)
}

fn try_size(target: &Target, case: usize) -> Result<(), VirtioError> {
    let q = target.kind.queue();
    let mut t = Transport::start(&target.device, 0)?;
    if target.kind == Kind::Console {
        t.setup_queue(0, 16)?;
    }
    let max = t.queue_num_max(q);
    let (size, what) = match case {
        0 => (0, "zero"),
        1 => (3, "not a power of two"),
        2 => (100, "not a power of two"),
        3 => (max.saturating_add(1), "QueueNumMax + 1"),
        4 => (0x1_0000, "past 16 bits"),
        _ => (u32::MAX, "all ones"),
    };
    let base = dma::alloc_zeroed(RINGS.total, PAGE_SIZE).ok_or(VirtioError::OutOfMemory)?;
    t.program_queue(
        q,
        size,
        base + RINGS.desc,
        base + RINGS.avail,
        base + RINGS.used,
    );
    let ready = t.queue_ready(q);
    let ok = t.driver_ok();
    println!(
        "{NAME}: QueueNum {size} ({what}; QueueNumMax {max}): QueueReady reads {ready}, DRIVER_OK {}, status {:#x}",
        if ok.is_ok() { "taken" } else { "refused" },
        t.read_status()
    );
    // SAFETY: `base` is fresh zeroed arena memory laid out as `RINGS`,
    // programmed as queue `q`.
    let queue = unsafe { Virtqueue::new(q, t.regs(), base, RINGS) };
    let mut s = Session::with(target, t, queue)?;
    let head = s.valid_request(0);
    s.publish(head);
    s.report(format_args!("a valid request with QueueNum {size}"));
    Ok(())
}

guest_rt::entry!(main);
