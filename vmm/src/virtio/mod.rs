//! virtio in the vm process: one virtio-mmio transport per device, acting as
//! the vhost-user frontend of the device's backend process.

pub mod device;
pub mod mmio;
pub mod vhost;
