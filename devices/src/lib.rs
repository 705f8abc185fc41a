//! cordon's vhost-user device backends. Each runs in its own process, as
//! `cordon device KIND --socket PATH` (standalone, for any frontend) or
//! spawned by `cordon run` with its fds handed over. `vmm` never depends on
//! this crate: the vhost-user socket is the boundary.
//!
//! Every backend has the same shape: a `Config` (listener, mode, the host
//! fds it needs), `start_backend(config)`, and a `VhostUserBackendMut` in
//! its own file, served by [`serve::serve`].

pub mod block;
pub mod console;
pub mod error;
pub mod rng;
pub mod serve;

pub use error::DeviceError;
pub use serve::Mode;
