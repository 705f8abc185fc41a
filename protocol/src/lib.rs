//! What `vmm` and `devices` share without depending on each other: the
//! configuration a device process receives, and rate limiting for log lines
//! a guest can trigger.

pub mod device;
pub mod ratelimit;
