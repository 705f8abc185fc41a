//! Device kinds and the configuration a spawned device process receives on
//! its control socket (standalone backends take the same from their CLI).

use serde::{Deserialize, Serialize};

/// The virtio devices cordon's backends implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    Console,
    Block,
    Rng,
}

impl DeviceKind {
    /// The name on the command line (`cordon device NAME`).
    pub const fn name(self) -> &'static str {
        match self {
            DeviceKind::Console => "console",
            DeviceKind::Block => "block",
            DeviceKind::Rng => "rng",
        }
    }

    /// Number of virtqueues (console: receiveq and transmitq of port 0;
    /// block and rng: one request queue).
    pub const fn queues(self) -> usize {
        match self {
            DeviceKind::Console => 2,
            DeviceKind::Block | DeviceKind::Rng => 1,
        }
    }

    /// Bytes of device configuration the frontend exposes: console 12
    /// (`virtio_console_config`), block 60 (`virtio_blk_config` up to the
    /// write-zeroes fields, what every vhost-user-blk backend answers),
    /// rng none.
    pub const fn config_size(self) -> u32 {
        match self {
            DeviceKind::Console => 12,
            DeviceKind::Block => 60,
            DeviceKind::Rng => 0,
        }
    }

    /// The config bytes a driver may write (everything else is read-only):
    /// block's `writeback` byte (with VIRTIO_BLK_F_CONFIG_WCE); console and
    /// rng have none cordon offers (console's `emerg_wr` needs EMERG_WRITE).
    pub const fn writable_config(self) -> Option<(u32, u32)> {
        match self {
            DeviceKind::Block => Some((0x20, 1)),
            DeviceKind::Console | DeviceKind::Rng => None,
        }
    }

    /// The virtio device id.
    pub const fn virtio_id(self) -> u32 {
        match self {
            DeviceKind::Console => 3,
            DeviceKind::Block => 2,
            DeviceKind::Rng => 4,
        }
    }
}

/// What a device process spawned by `cordon run` receives on its control
/// socket. Fd numbers are of descriptors it inherited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    pub kind: DeviceKind,
    /// For logs: "console", "block0", "rng".
    pub name: String,
    /// `log::LevelFilter` as text.
    pub log_level: String,
    /// Listening vhost-user sockets, one per device this process serves
    /// (console: two, stdout+stdin then stderr; others: one). The vm
    /// process's connection is already queued on each.
    pub listeners: Vec<i32>,
    /// Block: the image, opened by the supervisor.
    pub image: Option<i32>,
    /// Block: refuse writes.
    pub read_only: bool,
}

/// Supervisor -> device process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToDevice {
    Start(DeviceConfig),
}
