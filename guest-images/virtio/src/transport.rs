//! Driver side of the virtio-mmio version 2 transport: reset, feature
//! negotiation, queue setup, DRIVER_OK, config space (virtio 1.2, 3.1 and
//! 4.2.3).
//!
//! The normal path is [`Transport::start`], then [`Transport::setup_queue`]
//! per queue, then [`Transport::driver_ok`]. The single steps are public so
//! hostile guests can take them out of order.

use crate::clock::Deadline;
use crate::mmio::{reg, status, Mmio, MAGIC, VERSION_2};
use crate::queue::Virtqueue;
use crate::ring::{choose_size, Layout};
use crate::{dma, Device, VirtioError};

/// Feature bits every device type shares (virtio 1.2, 6).
pub mod feature {
    pub const INDIRECT_DESC: u64 = 1 << 28;
    pub const EVENT_IDX: u64 = 1 << 29;
    /// vhost-user's own bit, never a guest-visible feature.
    pub const VHOST_USER_PROTOCOL_FEATURES: u64 = 1 << 30;
    pub const VERSION_1: u64 = 1 << 32;
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
    pub const RING_PACKED: u64 = 1 << 34;
    pub const NOTIFICATION_DATA: u64 = 1 << 38;
    pub const RING_RESET: u64 = 1 << 40;
}

/// How long a reset may take before the device counts as stuck.
const RESET_TIMEOUT_MS: u64 = 1000;
/// Times a config read is retried while ConfigGeneration keeps changing.
const CONFIG_RETRIES: usize = 8;

/// One device's transport, as this driver has set it up.
pub struct Transport {
    regs: Mmio,
    device_id: u32,
    offered: u64,
    features: u64,
    status: u32,
    broken: bool,
}

impl Transport {
    /// Checks MagicValue, Version and DeviceID (which must be
    /// `device.device_id`); writes nothing.
    pub fn open(device: &Device) -> Result<Transport, VirtioError> {
        let regs = device.regs();
        let magic = regs.read32(reg::MAGIC);
        if magic != MAGIC {
            return Err(VirtioError::BadMagic(magic));
        }
        let version = regs.read32(reg::VERSION);
        if version != VERSION_2 {
            return Err(VirtioError::BadVersion(version));
        }
        let found = regs.read32(reg::DEVICE_ID);
        if found != device.device_id {
            return Err(VirtioError::WrongDevice {
                expected: device.device_id,
                found,
            });
        }
        Ok(Transport {
            regs,
            device_id: found,
            offered: 0,
            features: 0,
            status: 0,
            broken: false,
        })
    }

    /// Opens the device, resets it and negotiates features: the device's
    /// offer intersected with `wanted` and VERSION_1 (never a bit it did
    /// not offer). Leaves the status at ACKNOWLEDGE|DRIVER|FEATURES_OK.
    pub fn start(device: &Device, wanted: u64) -> Result<Transport, VirtioError> {
        let mut t = Transport::open(device)?;
        t.reset()?;
        t.set_status(status::ACKNOWLEDGE);
        t.set_status(status::ACKNOWLEDGE | status::DRIVER);
        t.offered = t.device_features();
        if t.offered & feature::VERSION_1 == 0 {
            t.fail();
            return Err(VirtioError::NoVersion1 { offered: t.offered });
        }
        let acked = t.offered & (wanted | feature::VERSION_1);
        t.write_driver_features(acked);
        t.set_status(t.status | status::FEATURES_OK);
        let now = t.read_status();
        if now & status::FEATURES_OK == 0 || now & status::FAILED != 0 {
            t.fail();
            return Err(VirtioError::FeaturesRejected { acked, status: now });
        }
        t.features = acked;
        Ok(t)
    }

    /// The register window.
    pub fn regs(&self) -> Mmio {
        self.regs
    }

    /// The virtio device id.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// Features the device offered (after [`Transport::start`]).
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Features negotiated (after [`Transport::start`]).
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Writes 0 to Status and waits until it reads back 0.
    pub fn reset(&mut self) -> Result<(), VirtioError> {
        self.set_status(0);
        let deadline = Deadline::after_ms(RESET_TIMEOUT_MS);
        loop {
            let now = self.read_status();
            if now == 0 {
                return Ok(());
            }
            if deadline.passed() {
                return Err(VirtioError::ResetTimeout { status: now });
            }
            guest_rt::wait(100);
        }
    }

    /// Gives up on the device after a failure: resets it, so it lets go of
    /// every buffer it holds, and refuses further requests
    /// ([`Transport::usable`]).
    pub fn give_up(&mut self) {
        self.broken = true;
        let _ = self.reset();
    }

    /// `Err(Broken)` once the driver gave up on the device.
    pub fn usable(&self) -> Result<(), VirtioError> {
        if self.broken {
            Err(VirtioError::Broken)
        } else {
            Ok(())
        }
    }

    /// Reads the Status register.
    pub fn read_status(&self) -> u32 {
        self.regs.read32(reg::STATUS)
    }

    /// Writes the Status register.
    pub fn set_status(&mut self, value: u32) {
        self.status = value;
        self.regs.write32(reg::STATUS, value);
    }

    /// Sets FAILED: the driver gives up on the device.
    pub fn fail(&mut self) {
        self.set_status(self.status | status::FAILED);
    }

    /// Reads the 64 feature bits the device offers (two selector writes,
    /// two reads).
    pub fn device_features(&self) -> u64 {
        self.regs.write32(reg::DEVICE_FEATURES_SEL, 0);
        let low = self.regs.read32(reg::DEVICE_FEATURES);
        self.regs.write32(reg::DEVICE_FEATURES_SEL, 1);
        let high = self.regs.read32(reg::DEVICE_FEATURES);
        u64::from(high) << 32 | u64::from(low)
    }

    /// Writes the 64 feature bits of the driver's ack, as given.
    pub fn write_driver_features(&self, features: u64) {
        self.regs.write32(reg::DRIVER_FEATURES_SEL, 0);
        self.regs.write32(reg::DRIVER_FEATURES, features as u32);
        self.regs.write32(reg::DRIVER_FEATURES_SEL, 1);
        self.regs
            .write32(reg::DRIVER_FEATURES, (features >> 32) as u32);
    }

    /// QueueNumMax of queue `index` (selects it).
    pub fn queue_num_max(&self, index: u16) -> u32 {
        self.regs.write32(reg::QUEUE_SEL, u32::from(index));
        self.regs.read32(reg::QUEUE_NUM_MAX)
    }

    /// QueueReady of queue `index` (selects it).
    pub fn queue_ready(&self, index: u16) -> u32 {
        self.regs.write32(reg::QUEUE_SEL, u32::from(index));
        self.regs.read32(reg::QUEUE_READY)
    }

    /// Programs queue `index` as given and sets QueueReady, checking
    /// nothing: `size` entries with the rings at `desc`, `avail`, `used`.
    pub fn program_queue(&self, index: u16, size: u32, desc: u64, avail: u64, used: u64) {
        let r = &self.regs;
        r.write32(reg::QUEUE_SEL, u32::from(index));
        r.write32(reg::QUEUE_NUM, size);
        r.write32(reg::QUEUE_DESC_LOW, desc as u32);
        r.write32(reg::QUEUE_DESC_HIGH, (desc >> 32) as u32);
        r.write32(reg::QUEUE_DRIVER_LOW, avail as u32);
        r.write32(reg::QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
        r.write32(reg::QUEUE_DEVICE_LOW, used as u32);
        r.write32(reg::QUEUE_DEVICE_HIGH, (used >> 32) as u32);
        r.write32(reg::QUEUE_READY, 1);
    }

    /// Sets up queue `index` with min(QueueNumMax, `max_size`) entries
    /// (rounded down to a power of two) in fresh zeroed arena memory.
    pub fn setup_queue(&self, index: u16, max_size: u16) -> Result<Virtqueue, VirtioError> {
        let max = self.queue_num_max(index);
        let size = choose_size(max, max_size.min(crate::ring::MAX_QUEUE_SIZE))
            .ok_or(VirtioError::NoQueue(index))?;
        let layout = Layout::new(size).ok_or(VirtioError::NoQueue(index))?;
        let base = dma::alloc_zeroed(layout.total, guest_abi::PAGE_SIZE)
            .ok_or(VirtioError::OutOfMemory)?;
        let (desc, avail, used) = (base + layout.desc, base + layout.avail, base + layout.used);
        self.program_queue(index, u32::from(size), desc, avail, used);
        // SAFETY: `base` is fresh zeroed arena memory of `layout.total`
        // bytes, owned by this queue alone from here on.
        Ok(unsafe { Virtqueue::new(index, self.regs, base, layout) })
    }

    /// Sets DRIVER_OK and checks the device took it.
    pub fn driver_ok(&mut self) -> Result<(), VirtioError> {
        self.set_status(self.status | status::DRIVER_OK);
        self.check()
    }

    /// Reads Status: an error if the device needs a reset or failed.
    pub fn check(&self) -> Result<(), VirtioError> {
        check_status(self.read_status())
    }

    /// Writes QueueNotify for queue `index`.
    pub fn notify(&self, index: u16) {
        self.regs.write32(reg::QUEUE_NOTIFY, u32::from(index));
    }

    /// Runs `read` on the config space until ConfigGeneration is the same
    /// before and after (a bounded number of times), so multi-register
    /// fields are consistent.
    pub fn config<T>(&self, read: impl Fn(&Config) -> T) -> T {
        let config = Config { regs: self.regs };
        let mut before = self.regs.read32(reg::CONFIG_GENERATION);
        let mut tries = 1;
        loop {
            let value = read(&config);
            let after = self.regs.read32(reg::CONFIG_GENERATION);
            if after == before || tries == CONFIG_RETRIES {
                return value;
            }
            before = after;
            tries += 1;
        }
    }
}

/// An error if `value` (a Status read) says the device cannot go on.
pub(crate) fn check_status(value: u32) -> Result<(), VirtioError> {
    if value & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 {
        Err(VirtioError::DeviceFailed { status: value })
    } else {
        Ok(())
    }
}

/// The device-specific config space (offsets from 0x100), read with the
/// access widths the spec requires: 64-bit fields as two 32-bit halves.
pub struct Config {
    regs: Mmio,
}

impl Config {
    pub fn read8(&self, offset: u64) -> u8 {
        self.regs.read8(reg::CONFIG + offset)
    }

    pub fn read16(&self, offset: u64) -> u16 {
        self.regs.read16(reg::CONFIG + offset)
    }

    pub fn read32(&self, offset: u64) -> u32 {
        self.regs.read32(reg::CONFIG + offset)
    }

    pub fn read64(&self, offset: u64) -> u64 {
        let low = self.read32(offset);
        let high = self.read32(offset + 4);
        u64::from(high) << 32 | u64::from(low)
    }
}
