//! Reads argv[1] bytes (default 4096) from the first virtio-rng device and
//! prints how many and two statistics: the share of bits set and how many
//! of the 256 byte values occur. Exits 0, 3 if there is no rng device, 1 if
//! the device fails.
//!
//! Output (one line on success):
//! `rng-read: read N bytes; ONES of BITS bits set (P.P%); V distinct byte values`
#![no_std]
#![no_main]

use guest_rt::{boot, println, BootInfo};
use guest_virtio::{dma, id, Rng};

const DEFAULT_BYTES: usize = 4096;
/// Exit status when the sandbox has no rng device.
const NO_DEVICE: u32 = 3;

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let devices = guest_virtio::init(boot);
    let wanted = boot::argv(boot)
        .get(1)
        .and_then(|a| core::str::from_utf8(a).ok()?.parse().ok())
        .unwrap_or(DEFAULT_BYTES);
    let Some(device) = devices.find(id::RNG, 0) else {
        println!("rng-read: no rng device");
        return NO_DEVICE;
    };
    let mut rng = match Rng::new(&device) {
        Ok(rng) => rng,
        Err(e) => {
            println!("rng-read: FAIL setting up the device: {e}");
            return 1;
        }
    };
    let Some(buf) = dma::alloc_buffer(wanted) else {
        println!("rng-read: FAIL no memory for {wanted} bytes");
        return 1;
    };
    if let Err(e) = rng.fill(buf) {
        println!("rng-read: FAIL reading: {e}");
        return 1;
    }
    let ones: u64 = buf.iter().map(|b| u64::from(b.count_ones())).sum();
    let bits = wanted as u64 * 8;
    let tenths = (ones * 1000).checked_div(bits).unwrap_or(0);
    let mut seen = [false; 256];
    for &b in buf.iter() {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    println!(
        "rng-read: read {wanted} bytes; {ones} of {bits} bits set ({}.{}%); {distinct} distinct byte values",
        tenths / 10,
        tenths % 10
    );
    0
}

guest_rt::entry!(main);
