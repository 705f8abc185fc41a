//! cordon's VMM: KVM, guest memory, boot, the vCPU loop and the supervisor.
//!
//! Module map (arrows point down): `supervisor` (spawn, watch) and `vm` (the
//! vm process) use `control`, `config`, `events`, `exit`, `boot` and `arch`;
//! `spawn` is the one place children are created.

pub mod arch;
pub mod boot;
pub mod check;
pub mod config;
pub mod control;
pub mod events;
pub mod exit;
pub mod policy;
pub mod spawn;
pub mod supervisor;
pub mod virtio;
pub mod vm;

pub use protocol::error_chain;
