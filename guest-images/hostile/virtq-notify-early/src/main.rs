//! Writes QueueNotify for the target device's request queue (see
//! `virtq-kit` for the choice of device) before DRIVER_OK: right after the
//! reset (status 0), after ACKNOWLEDGE|DRIVER, after FEATURES_OK, and once
//! the queue is set up with a valid request published in it. Reports
//! whether that request came back before DRIVER_OK (it must not), then
//! sets DRIVER_OK, notifies again and reports it.
//!
//! Then a valid request on the same queue. See `virtq-kit` for the choice
//! of device and the frame around the attack.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::mmio::status::{ACKNOWLEDGE, DRIVER, FEATURES_OK};
use guest_virtio::ring::MAX_QUEUE_SIZE;
use guest_virtio::{feature, Transport, VirtioError};
use virtq_kit::{Kind, Outcome, Session, Target};

const NAME: &str = "virtq-notify-early";

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    virtq_kit::cases(NAME, boot, 1, |target, _| {
        early(target)?.valid_on_same_queue();
        Ok(())
    })
}

fn early(target: &Target) -> Result<Session, VirtioError> {
    let q = target.kind.queue();
    let mut t = Transport::open(&target.device)?;
    t.reset()?;
    t.notify(q);
    println!(
        "{NAME}: notified at status 0, status now {:#x}",
        t.read_status()
    );
    t.set_status(ACKNOWLEDGE | DRIVER);
    t.notify(q);
    println!(
        "{NAME}: notified at ACKNOWLEDGE|DRIVER, status now {:#x}",
        t.read_status()
    );
    t.write_driver_features(t.device_features() & feature::VERSION_1);
    t.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK);
    t.notify(q);
    println!(
        "{NAME}: notified at FEATURES_OK, status now {:#x}",
        t.read_status()
    );
    if target.kind == Kind::Console {
        t.setup_queue(0, 16)?;
    }
    let queue = t.setup_queue(q, MAX_QUEUE_SIZE)?;
    let mut s = Session::with(target, t, queue)?;
    let head = s.valid_request(0);
    s.publish(head);
    println!("{NAME}: published a valid request and notified before DRIVER_OK");
    let before = s.report("the request before DRIVER_OK");
    let ok = s.transport.driver_ok();
    println!(
        "{NAME}: DRIVER_OK {}, status {:#x}",
        if ok.is_ok() { "taken" } else { "refused" },
        s.transport.read_status()
    );
    s.queue.notify();
    if before == Outcome::NotReturned {
        s.report("the same request after DRIVER_OK and a notify");
    }
    Ok(s)
}

guest_rt::entry!(main);
