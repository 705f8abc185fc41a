//! Acks features the target device (see `virtq-kit` for the choice of
//! device) never offered, one reset each:
//! 1. every bit of feature words 0 and 1,
//! 2. VERSION_1 plus those of INDIRECT_DESC, EVENT_IDX, vhost-user's
//!    PROTOCOL_FEATURES, ACCESS_PLATFORM, RING_PACKED, NOTIFICATION_DATA
//!    and RING_RESET that were not offered,
//! 3. what was offered, plus all ones in feature words 2 and 3.
//!
//! After each it sets FEATURES_OK and prints whether the device kept it
//! (it must not, for a bit it never offered); if it did, it goes on to
//! DRIVER_OK and a valid request and reports that.
//!
//! See `virtq-kit` for the choice of device and the frame around the
//! cases.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::mmio::reg::{DRIVER_FEATURES, DRIVER_FEATURES_SEL};
use guest_virtio::mmio::status::{ACKNOWLEDGE, DRIVER, FEATURES_OK};
use guest_virtio::ring::MAX_QUEUE_SIZE;
use guest_virtio::{feature, Transport, VirtioError};
use virtq_kit::{Kind, Session, Target};

const NAME: &str = "virtq-bad-features";

/// Transport features a device behind cordon must never see unless offered.
const RISKY: u64 = feature::INDIRECT_DESC
    | feature::EVENT_IDX
    | feature::VHOST_USER_PROTOCOL_FEATURES
    | feature::ACCESS_PLATFORM
    | feature::RING_PACKED
    | feature::NOTIFICATION_DATA
    | feature::RING_RESET;

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    virtq_kit::cases(NAME, boot, 3, try_ack)
}

fn try_ack(target: &Target, case: usize) -> Result<(), VirtioError> {
    let mut t = Transport::open(&target.device)?;
    t.reset()?;
    t.set_status(ACKNOWLEDGE | DRIVER);
    let offered = t.device_features();
    let (what, ack, high_words) = match case {
        0 => ("every bit of words 0 and 1", u64::MAX, false),
        1 => (
            "transport bits not offered",
            feature::VERSION_1 | (RISKY & !offered),
            false,
        ),
        _ => ("all ones in words 2 and 3", offered, true),
    };
    if ack & !offered == 0 && !high_words {
        println!("{NAME}: {what}: the device offers them all ({offered:#x}); skipped");
        return Ok(());
    }
    t.write_driver_features(ack);
    if high_words {
        let regs = t.regs();
        for word in [2, 3] {
            regs.write32(DRIVER_FEATURES_SEL, word);
            regs.write32(DRIVER_FEATURES, u32::MAX);
        }
    }
    t.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK);
    let status = t.read_status();
    let kept = status & FEATURES_OK != 0;
    println!(
        "{NAME}: {what}: acked {ack:#x} of offered {offered:#x}: FEATURES_OK {}, status {status:#x}",
        if kept { "KEPT" } else { "cleared" }
    );
    if kept {
        if target.kind == Kind::Console {
            t.setup_queue(0, 16)?;
        }
        let queue = t.setup_queue(target.kind.queue(), MAX_QUEUE_SIZE)?;
        let ok = t.driver_ok();
        println!(
            "{NAME}: {what}: DRIVER_OK {}",
            if ok.is_ok() { "taken" } else { "refused" }
        );
        let mut s = Session::with(target, t, queue)?;
        let head = s.valid_request(0);
        s.publish(head);
        s.report(format_args!("a request after acking {what}"));
    }
    Ok(())
}

guest_rt::entry!(main);
