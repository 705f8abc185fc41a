//! Hands the target device addresses outside guest RAM (see `virtq-kit`
//! for the choice of device). Two phases, both by default, one with the
//! argument `desc` or `ring`:
//!
//! - desc: valid requests whose data buffer (and, for block, separately the
//!   header) lies past the end of RAM, straddles it, wraps at 2^64 or is in
//!   the device window. Each is reported with what came back.
//! - ring: the queue's descriptor table, available ring or used ring (and
//!   then all three) outside RAM; the guest reads QueueReady back, sets
//!   DRIVER_OK, publishes a request in its real rings and reports Status.
//!
//! See `virtq-kit` for the choice of device and the frame around the
//! phases.
#![no_std]
#![no_main]

use guest_rt::abi::{BootInfo, DEVICE_WINDOW_BASE, PAGE_SIZE};
use guest_rt::println;
use guest_virtio::ring::{Layout, MAX_QUEUE_SIZE};
use guest_virtio::{dma, Transport, VirtioError, Virtqueue};
use virtq_kit::{has_arg, Kind, Session, Target};

const NAME: &str = "virtq-oob-addr";

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let (desc, ring) = match (has_arg(boot, "desc"), has_arg(boot, "ring")) {
        (false, false) => (true, true),
        chosen => chosen,
    };
    virtq_kit::cases(NAME, boot, 2, |target, phase| match phase {
        0 if desc => bad_buffers(target),
        1 if ring => bad_rings(target),
        _ => Ok(()),
    })
}

/// Places outside RAM, by name.
fn outside() -> [(&'static str, u64); 4] {
    let end = dma::ram_end();
    [
        ("just past the end of RAM", end),
        ("straddling the end of RAM", end - 256),
        ("wrapping at 2^64", u64::MAX - 255),
        ("in the device window", DEVICE_WINDOW_BASE),
    ]
}

fn bad_buffers(target: &Target) -> Result<(), VirtioError> {
    let mut s = Session::start(target, 0)?;
    let mut first = 0;
    for (what, addr) in outside() {
        let head = s.valid_request(first);
        // SAFETY: `addr` is not guest RAM (see `outside`): no Rust object
        // is there for the device to touch.
        unsafe { s.relocate(s.data_index(head), addr, 512) };
        s.publish(head);
        s.report(format_args!("data buffer {what}"));
        first += 4;
    }
    if target.kind == Kind::Block {
        let head = s.valid_request(first);
        // SAFETY: as above, the header is moved out of RAM.
        unsafe { s.relocate(head, dma::ram_end(), 16) };
        s.publish(head);
        s.report("request header just past the end of RAM");
    }
    s.valid_on_same_queue();
    Ok(())
}

/// A ring placement: which rings are moved out of RAM.
const RING_CASES: [(&str, [bool; 3]); 4] = [
    ("descriptor table", [true, false, false]),
    ("available ring", [false, true, false]),
    ("used ring", [false, false, true]),
    ("all three rings", [true, true, true]),
];

fn bad_rings(target: &Target) -> Result<(), VirtioError> {
    let q = target.kind.queue();
    let places = outside();
    for (i, (rings, moved)) in RING_CASES.iter().enumerate() {
        let (place, bad) = places[i % places.len()];
        let mut t = Transport::start(&target.device, 0)?;
        if target.kind == Kind::Console {
            t.setup_queue(0, 16)?;
        }
        let layout = Layout::new(MAX_QUEUE_SIZE).ok_or(VirtioError::NoQueue(q))?;
        let base = dma::alloc_zeroed(layout.total, PAGE_SIZE).ok_or(VirtioError::OutOfMemory)?;
        let real = [base + layout.desc, base + layout.avail, base + layout.used];
        let at = |k: usize| if moved[k] { bad } else { real[k] };
        t.program_queue(q, u32::from(layout.size), at(0), at(1), at(2));
        let ready = t.queue_ready(q);
        let ok = t.driver_ok();
        let status = t.read_status();
        let what = format_args!("{rings} {place}");
        println!(
            "{NAME}: {what}: QueueReady reads {ready}, DRIVER_OK {}, status {status:#x}",
            if ok.is_ok() { "taken" } else { "refused" }
        );
        // SAFETY: `base` is fresh zeroed arena memory laid out by `layout`,
        // programmed as queue `q` (where the device is told to look for it).
        let queue = unsafe { Virtqueue::new(q, t.regs(), base, layout) };
        let mut s = Session::with(target, t, queue)?;
        let head = s.valid_request(0);
        s.publish(head);
        s.report(what);
    }
    Ok(())
}

guest_rt::entry!(main);
