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

    /// The virtio device id.
    pub const fn virtio_id(self) -> u32 {
        match self {
            DeviceKind::Console => 3,
            DeviceKind::Block => 2,
            DeviceKind::Rng => 4,
        }
    }
}
