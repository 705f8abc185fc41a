//! One virtio device in the vm process: its MMIO register window and the
//! vhost-user frontend behind it. Register and config accesses are the
//! control plane (they exit to the vm process); queue kicks and used-buffer
//! notifications never pass through here.

use std::time::Duration;

use protocol::device::DeviceKind;
use protocol::ratelimit::RateLimiter;
use vm_memory::GuestMemoryMmap;

use super::mmio::{Effect, Transport, CONFIG_OFFSET};
use super::vhost::{VhostDevice, VhostError};

/// Largest queue a driver may configure.
pub const QUEUE_MAX: u16 = 256;

pub struct VirtioDevice {
    pub kind: DeviceKind,
    /// A name for logs: "block0", "rng".
    pub name: String,
    transport: Transport,
    vhost: VhostDevice,
    /// Set once a request to the backend failed: the device then only
    /// reports DEVICE_NEEDS_RESET, until the supervisor restarts the
    /// backend and `reconnect` replays it.
    backend_gone: bool,
    log: RateLimiter,
}

impl VirtioDevice {
    /// The eventfds KVM signals on QueueNotify, per queue (kept across
    /// backend restarts).
    pub fn kicks(&self) -> &[vmm_sys_util::eventfd::EventFd] {
        &self.vhost.kicks
    }

    /// The backend, unless a request to it failed.
    fn backend(&mut self) -> Option<&mut VhostDevice> {
        (!self.backend_gone).then_some(&mut self.vhost)
    }

    /// The backend was restarted: connect to it on `stream` and replay
    /// the memory table, features and started rings. A device the guest
    /// saw fail keeps DEVICE_NEEDS_RESET (the driver resets it).
    pub fn reconnect(
        &mut self,
        stream: std::os::unix::net::UnixStream,
        mem: &GuestMemoryMmap,
        memfd: &impl std::os::fd::AsRawFd,
    ) -> Result<(), VhostError> {
        self.backend_gone = true;
        self.vhost.reconnect(
            stream,
            mem,
            memfd,
            self.transport.queues(),
            self.transport.status(),
            self.transport.acked(),
        )?;
        self.backend_gone = false;
        Ok(())
    }

    pub fn new(kind: DeviceKind, name: String, vhost: VhostDevice) -> VirtioDevice {
        let queue_max = vec![QUEUE_MAX; kind.queues()];
        VirtioDevice {
            transport: Transport::new(kind.virtio_id(), vhost.offered, &queue_max),
            kind,
            name,
            vhost,
            backend_gone: false,
            log: RateLimiter::new(5, Duration::from_secs(1)),
        }
    }

    fn complain(&self, what: &str) {
        if let Some(suppressed) = self.log.check() {
            let more = if suppressed > 0 {
                format!(" ({suppressed} more not logged)")
            } else {
                String::new()
            };
            log::warn!("{}: {what}{more}", self.name);
        }
    }

    fn fail(&mut self, err: &VhostError) {
        self.complain(&format!("backend failed: {}", crate::error_chain(err)));
        if matches!(err, VhostError::Request { .. } | VhostError::Socket(_)) {
            self.backend_gone = true;
        }
        self.transport.needs_reset();
    }

    /// A guest read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if offset >= CONFIG_OFFSET {
            let (off, len) = ((offset - CONFIG_OFFSET) as u32, data.len() as u32);
            let Some(vhost) = self.backend() else {
                return;
            };
            match vhost.read_config(off, len) {
                Ok(bytes) if bytes.len() == data.len() => data.copy_from_slice(&bytes),
                Ok(_) => self.complain("config read answered with the wrong size"),
                Err(e) => self.config_error(&e),
            }
            return;
        }
        match (data.len(), self.transport.read(offset)) {
            (4, Some(value)) => data.copy_from_slice(&value.to_le_bytes()),
            _ => self.complain(&format!(
                "read of {} bytes at register {offset:#x} refused",
                data.len()
            )),
        }
    }

    fn config_error(&mut self, err: &VhostError) {
        match err {
            VhostError::ConfigRange { .. } => self.complain(&err.to_string()),
            _ => self.fail(err),
        }
    }

    /// A guest write at `offset` in the window.
    pub fn write(&mut self, offset: u64, data: &[u8], mem: &GuestMemoryMmap) {
        if offset >= CONFIG_OFFSET {
            let off = (offset - CONFIG_OFFSET) as u32;
            // Read-only fields never reach the backend: QEMU's vhost-user-blk
            // export and ours both drop the connection on such a SET_CONFIG.
            let writable = self.kind.writable_config().is_some_and(|(start, len)| {
                off >= start && (off as usize + data.len()) as u64 <= u64::from(start + len)
            });
            if !writable {
                return self.complain(&format!(
                    "write of {} bytes to read-only config at {off:#x} dropped",
                    data.len()
                ));
            }
            let result = self.backend().map(|v| v.write_config(off, data));
            if let Some(Err(e)) = result {
                self.config_error(&e);
            }
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return self.complain(&format!(
                "write of {} bytes at register {offset:#x} refused",
                data.len()
            ));
        };
        let effect = self.transport.write(offset, u32::from_le_bytes(bytes));
        self.apply(effect, mem);
    }

    fn apply(&mut self, effect: Effect, mem: &GuestMemoryMmap) {
        let backend = (!self.backend_gone).then_some(&mut self.vhost);
        let result = match (effect, backend) {
            (Effect::None, _) | (_, None) => Ok(()),
            (Effect::Refused(why), _) => {
                self.complain(why);
                Ok(())
            }
            (Effect::FeaturesOk(acked), Some(v)) => v.set_features(acked),
            (Effect::DriverOk, Some(v)) => v.start(self.transport.queues(), mem),
            (Effect::Reset, Some(v)) => v.reset(),
            (Effect::Notify(queue), Some(v)) => {
                // No ioeventfd caught it (a queue index it does not match):
                // pass it on if the queue exists.
                match v.kicks.get(usize::from(queue)) {
                    Some(kick) => kick.write(1).map_err(VhostError::EventFd),
                    None => {
                        self.complain("notify for a queue that does not exist");
                        Ok(())
                    }
                }
            }
        };
        if let Err(e) = result {
            self.fail(&e);
        }
    }

    /// The backend signalled used buffers on some queue.
    pub fn signal_used(&mut self) {
        self.transport.signal_used();
    }

    /// The eventfds the backend signals (for the vm process's poll loop).
    pub fn calls(&self) -> impl Iterator<Item = &vmm_sys_util::eventfd::EventFd> {
        self.vhost.calls.iter()
    }
}
