//! Publishes descriptor chains that loop, on the target device's request
//! queue (see `virtq-kit` for the choice of device and the frame around
//! the attack):
//! 1. descriptor 0 whose `next` is itself (a loop of one),
//! 2. a valid request at descriptors 4.. whose last descriptor points back
//!    at its first.
//!
//! The device must not follow either forever: it may return the chain with
//! an error or drop it, and must keep serving.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::VirtioError;
use virtq_kit::Session;

const NAME: &str = "virtq-desc-loop";

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    virtq_kit::run(NAME, boot, attack)
}

fn attack(s: &mut Session) -> Result<(), VirtioError> {
    let head = s.valid_request(0);
    s.relink(head, head);
    s.publish(head);
    println!("{NAME}: published descriptor 0 with next = 0 (a loop of one)");
    s.report("loop of one");

    let head = s.valid_request(4);
    let last = head + s.request_len() - 1;
    s.relink(last, head);
    s.publish(head);
    println!("{NAME}: published a request at descriptors {head}..={last}, the last linked back to {head}");
    s.report("loop through a request");
    Ok(())
}

guest_rt::entry!(main);
