//! The virtio-mmio (version 2) register file of one device, as pure state:
//! register reads and writes in, `Effect`s for the vhost-user frontend out.
//! Everything here is guest-controlled input and is checked.

use guest_abi::virtio_mmio::{reg, MAGIC as MAGIC_VALUE, VERSION_2};

/// Where QueueNotify sits, for the ioeventfd.
pub const QUEUE_NOTIFY_OFFSET: u64 = reg::QUEUE_NOTIFY;
/// Where device-specific configuration starts.
pub const CONFIG_OFFSET: u64 = reg::CONFIG;
/// "CRDN": cordon's vendor id.
const VENDOR: u32 = 0x4e44_5243;

pub use guest_abi::virtio_mmio::status;

/// One virtqueue as the driver configured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueConfig {
    pub max: u16,
    pub num: u16,
    pub ready: bool,
    pub desc: u64,
    pub driver: u64,
    pub device: u64,
}

impl QueueConfig {
    /// Whether `num` is a size a split queue may have.
    pub fn size_ok(&self) -> bool {
        self.num != 0 && self.num <= self.max && self.num.is_power_of_two()
    }
}

/// What a register write asks of the device behind the transport.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The driver set FEATURES_OK with these (offered) features.
    FeaturesOk(u64),
    /// The driver set DRIVER_OK: start every ready queue.
    DriverOk,
    /// The driver wrote status 0.
    Reset,
    /// QueueNotify reached userspace (no ioeventfd caught it).
    Notify(u16),
    /// A write the transport refused; the text says why.
    Refused(&'static str),
}

/// The register state of one virtio-mmio device.
#[derive(Debug)]
pub struct Transport {
    device_id: u32,
    offered: u64,
    acked: u64,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
    queues: Vec<QueueConfig>,
    status: u32,
    interrupt_status: u32,
    config_generation: u32,
}

fn set_half(value: &mut u64, high: bool, part: u32) {
    *value = if high {
        (*value & 0xffff_ffff) | (u64::from(part) << 32)
    } else {
        (*value & !0xffff_ffff) | u64::from(part)
    };
}

impl Transport {
    /// A device with `queue_max` as each queue's maximum size.
    pub fn new(device_id: u32, offered: u64, queue_max: &[u16]) -> Transport {
        let queues = queue_max
            .iter()
            .map(|&max| QueueConfig {
                max,
                ..Default::default()
            })
            .collect();
        Transport {
            device_id,
            offered,
            acked: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            queue_sel: 0,
            queues,
            status: 0,
            interrupt_status: 0,
            config_generation: 0,
        }
    }

    pub fn queues(&self) -> &[QueueConfig] {
        &self.queues
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    /// Marks the device broken: the driver sees DEVICE_NEEDS_RESET.
    pub fn needs_reset(&mut self) {
        self.status |= status::DEVICE_NEEDS_RESET;
        self.config_generation = self.config_generation.wrapping_add(1);
    }

    /// A used buffer was notified (the used-ring interrupt bit).
    pub fn signal_used(&mut self) {
        self.interrupt_status |= 1;
    }

    fn queue(&self) -> Option<&QueueConfig> {
        self.queues.get(self.queue_sel as usize)
    }

    /// Reads a 32-bit register; `None` for offsets that are not one.
    pub fn read(&self, offset: u64) -> Option<u32> {
        let q = self.queue();
        Some(match offset {
            reg::MAGIC => MAGIC_VALUE,
            reg::VERSION => VERSION_2,
            reg::DEVICE_ID => self.device_id,
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered as u32,
                1 => (self.offered >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max)),
            reg::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => self.config_generation,
            _ => return None,
        })
    }

    /// Writes a 32-bit register.
    pub fn write(&mut self, offset: u64, value: u32) -> Effect {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES => return self.write_driver_features(value),
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NOTIFY => return Effect::Notify(value as u16),
            reg::INTERRUPT_ACK => self.interrupt_status &= !value,
            reg::STATUS => return self.write_status(value),
            reg::QUEUE_NUM | reg::QUEUE_READY | reg::QUEUE_DESC_LOW..=reg::QUEUE_DEVICE_HIGH => {
                return self.write_queue(offset, value)
            }
            _ => return Effect::Refused("write to a read-only or unknown register"),
        }
        Effect::None
    }

    fn write_driver_features(&mut self, value: u32) -> Effect {
        if self.status & status::FEATURES_OK != 0 {
            return Effect::Refused("driver features written after FEATURES_OK");
        }
        match self.driver_features_sel {
            0 => set_half(&mut self.acked, false, value),
            1 => set_half(&mut self.acked, true, value),
            _ => return Effect::Refused("driver features select above 1"),
        }
        Effect::None
    }

    fn write_queue(&mut self, offset: u64, value: u32) -> Effect {
        if self.status & status::DRIVER_OK != 0 {
            return Effect::Refused("queue configured after DRIVER_OK");
        }
        let Some(q) = self.queues.get_mut(self.queue_sel as usize) else {
            return Effect::Refused("queue select names no queue");
        };
        if q.ready && offset != reg::QUEUE_READY {
            return Effect::Refused("queue configured while ready");
        }
        let high = offset & 4 != 0;
        match offset {
            reg::QUEUE_NUM => q.num = value.min(u32::from(u16::MAX)) as u16,
            reg::QUEUE_READY => q.ready = value == 1,
            reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => set_half(&mut q.desc, high, value),
            reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH => set_half(&mut q.driver, high, value),
            reg::QUEUE_DEVICE_LOW | reg::QUEUE_DEVICE_HIGH => set_half(&mut q.device, high, value),
            _ => return Effect::Refused("not a queue register"),
        }
        Effect::None
    }

    fn write_status(&mut self, value: u32) -> Effect {
        if value == 0 {
            let queue_max: Vec<u16> = self.queues.iter().map(|q| q.max).collect();
            *self = Transport::new(self.device_id, self.offered, &queue_max);
            return Effect::Reset;
        }
        let added = value & !self.status;
        if value & self.status != self.status {
            return Effect::Refused("status bits cleared without a reset");
        }
        if added & status::FEATURES_OK != 0 {
            if self.acked & !self.offered != 0 {
                // The device refuses: FEATURES_OK stays clear (virtio 3.1.1).
                self.status = value & !status::FEATURES_OK;
                return Effect::Refused("driver acked features the device never offered");
            }
            self.status = value;
            return Effect::FeaturesOk(self.acked);
        }
        if added & status::DRIVER_OK != 0 {
            if self.status & status::FEATURES_OK == 0 {
                self.status = value & !status::DRIVER_OK;
                return Effect::Refused("DRIVER_OK before FEATURES_OK");
            }
            self.status = value;
            return Effect::DriverOk;
        }
        self.status = value;
        Effect::None
    }

    /// The 64-bit value of a feature register pair, for tests and logs.
    pub fn acked(&self) -> u64 {
        self.acked
    }
}

#[cfg(test)]
mod tests;
