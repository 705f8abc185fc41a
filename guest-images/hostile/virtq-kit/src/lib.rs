//! Shared parts of the hostile virtqueue guests (`hostile/virtq-*`).
//!
//! Each guest attacks one device: the one its arguments name (`blk`, `rng`
//! or `console`), else the first block device, else rng, else console 0.
//! Around its attack it uses a [`Session`]: a device set up by the book,
//! whose queue it then fills by hand. The frames [`run`] and [`cases`] put
//! the same steps around every attack:
//!
//! - `NAME: target KIND (device I of the boot info)` first;
//! - what the attack did and observed (per guest), where a chain the guest
//!   published is reported as `NAME: WHAT: returned head H, len L[, block
//!   status S (NAME)| block status not written]; status 0x..` or `NAME:
//!   WHAT: not returned within 500 ms; status 0x..` (the Status register);
//! - `NAME: stopped early: ERROR` if the device stopped answering (a
//!   reset did not complete, for example): an observation, not a failure;
//! - for single attacks, a valid request on the same queue, reported the
//!   same way (`a valid request on the same queue: ...`);
//! - `NAME: after reset: the device serves requests` (or `... the device
//!   failed: ERROR`), a request through the normal driver after a reset;
//! - `NAME: done, not stopped`, and exit status 0.
//!
//! Exit status 3: no device to attack; 1: the device could not be set up
//! before the attack. The lines are deterministic for a given device
//! behaviour (no times; addresses only from the command line and memory
//! size).
#![no_std]

pub mod session;

pub use session::{Outcome, Session};

use guest_rt::{boot, println, BootInfo};
use guest_virtio::{id, Block, Console, Device, Devices, Rng, VirtioError};

/// The device kinds the guests attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Block,
    Rng,
    Console,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Rng => "rng",
            Kind::Console => "console",
        }
    }

    /// The virtio device id.
    pub fn device_id(self) -> u32 {
        match self {
            Kind::Block => id::BLOCK,
            Kind::Rng => id::RNG,
            Kind::Console => id::CONSOLE,
        }
    }

    /// The queue attacked: the request queue, or console's transmitq.
    pub fn queue(self) -> u16 {
        match self {
            Kind::Console => 1,
            _ => 0,
        }
    }

    /// Bytes of config space cordon's frontend exposes for the kind.
    pub fn config_size(self) -> u64 {
        match self {
            Kind::Block => 60,
            Kind::Rng => 0,
            Kind::Console => 12,
        }
    }
}

/// The device a guest attacks.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    pub device: Device,
}

/// Sets up the library and picks the target from the arguments; prints
/// `NAME: target KIND (device I of the boot info)` or why there is none.
pub fn target(name: &'static str, boot: &'static BootInfo) -> Option<Target> {
    let devices = guest_virtio::init(boot);
    let named = [
        ("blk", Kind::Block),
        ("rng", Kind::Rng),
        ("console", Kind::Console),
    ]
    .into_iter()
    .find(|(word, _)| has_arg(boot, word))
    .map(|(_, kind)| kind);
    let found = match named {
        Some(kind) => find(&devices, kind),
        None => [Kind::Block, Kind::Rng, Kind::Console]
            .into_iter()
            .find_map(|kind| find(&devices, kind)),
    };
    match found {
        Some((kind, device)) => {
            println!(
                "{name}: target {} (device {} of the boot info)",
                kind.name(),
                device.index
            );
            Some(Target { name, kind, device })
        }
        None => {
            println!("{name}: no device to attack ({} listed)", devices.listed());
            None
        }
    }
}

fn find(devices: &Devices, kind: Kind) -> Option<(Kind, Device)> {
    devices.find(kind.device_id(), 0).map(|d| (kind, d))
}

/// Whether one of the guest's arguments is `word`.
pub fn has_arg(boot: &'static BootInfo, word: &str) -> bool {
    boot::argv(boot)
        .iter()
        .skip(1)
        .any(|a| a == word.as_bytes())
}

/// Resets the device and drives one request through the normal driver;
/// prints `NAME: after reset: ...` and returns whether it worked.
pub fn after_reset(target: &Target) -> bool {
    let name = target.name;
    let result = match target.kind {
        Kind::Block => Block::new(&target.device)
            .map_err(guest_virtio::BlkError::from)
            .and_then(|mut disk| disk.read(0, &mut [0u8; 512])),
        Kind::Rng => Rng::new(&target.device)
            .and_then(|mut rng| rng.read(&mut [0u8; 16]))
            .map(|_| ())
            .map_err(Into::into),
        Kind::Console => Console::new(&target.device)
            .and_then(|mut c| c.write(b"virtq: console still works\n"))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => {
            println!("{name}: after reset: the device serves requests");
            true
        }
        Err(e) => {
            println!("{name}: after reset: the device failed: {e}");
            false
        }
    }
}

/// The frame of most attacks: picks the target, sets a session up by the
/// book, runs `attack` on it (which may replace it with a new one), then a
/// valid request on the same queue and one after a reset. An error from
/// `attack` is something the guest observed, not a failure: it is printed
/// (`NAME: stopped early: ...`) and the same-queue request is skipped.
/// Returns the exit status: 0 when not stopped, [`NO_DEVICE`], or 1 if the
/// device could not be set up before the attack.
pub fn run(
    name: &'static str,
    boot: &'static BootInfo,
    attack: impl FnOnce(&mut Session) -> Result<(), VirtioError>,
) -> u32 {
    let Some(target) = target(name, boot) else {
        return NO_DEVICE;
    };
    let mut session = match Session::start(&target, 0) {
        Ok(s) => s,
        Err(e) => return setup_failed(name, e),
    };
    match attack(&mut session) {
        Ok(()) => {
            session.valid_on_same_queue();
        }
        Err(e) => stopped_early(name, e),
    }
    after_reset(&target);
    survived(name)
}

/// The frame of attacks made of cases that each start from a reset: picks
/// the target, runs `case(target, i)` for `i` in `0..count`, stops at the
/// first error (printed as for [`run`]), then a valid request after a
/// reset. Returns the exit status: 0 when not stopped, or [`NO_DEVICE`].
pub fn cases(
    name: &'static str,
    boot: &'static BootInfo,
    count: usize,
    mut case: impl FnMut(&Target, usize) -> Result<(), VirtioError>,
) -> u32 {
    let Some(target) = target(name, boot) else {
        return NO_DEVICE;
    };
    if let Some(e) = (0..count).find_map(|i| case(&target, i).err()) {
        stopped_early(name, e);
    }
    after_reset(&target);
    survived(name)
}

fn stopped_early(name: &str, e: VirtioError) {
    println!("{name}: stopped early: {e}");
}

/// Exit status of a guest that found no device to attack.
pub const NO_DEVICE: u32 = 3;

/// Prints that setting the device up failed; the exit status for it.
pub fn setup_failed(name: &str, e: VirtioError) -> u32 {
    println!("{name}: FAIL setting up the device: {e}");
    1
}

/// The line every guest ends with when it was not stopped.
pub fn survived(name: &str) -> u32 {
    println!("{name}: done, not stopped");
    0
}
