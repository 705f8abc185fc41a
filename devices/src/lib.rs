//! cordon's vhost-user device backends. Each runs in its own process, as
//! `cordon device KIND --socket PATH` (standalone, for any frontend) or
//! spawned by `cordon run` with its fds handed over. `vmm` never depends on
//! this crate: the vhost-user socket is the boundary.

pub mod block;
