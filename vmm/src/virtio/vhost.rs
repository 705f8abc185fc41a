//! The vhost-user frontend of one device: everything the vm process says to
//! the device's backend process. The backend is treated as hostile, like
//! the guest: its features are masked, its replies bounded, and a socket
//! that stops answering times out instead of hanging a vCPU.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};
use vmm_sys_util::eventfd::EventFd;

use super::mmio::{status as mmio_status, QueueConfig};

/// How long the vm process waits for a backend's reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// VHOST_USER_F_PROTOCOL_FEATURES: vhost-user's own bit, never the guest's.
const PROTOCOL_FEATURES: u64 = 1 << 30;
/// Features a guest may see: the device-specific bits 0..=23, plus
/// INDIRECT_DESC (28), EVENT_IDX (29) and VERSION_1 (32). Never
/// ACCESS_PLATFORM (33), RING_PACKED (34), NOTIFICATION_DATA (38) or
/// RING_RESET (40): the transport does not implement them end to end.
pub const GUEST_FEATURE_MASK: u64 = 0x00ff_ffff | (1 << 28) | (1 << 29) | (1 << 32);

#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    #[error("vhost-user request {what} failed")]
    Request {
        what: &'static str,
        source: vhost::Error,
    },
    #[error("cannot set up the vhost-user socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot create an eventfd")]
    EventFd(#[source] std::io::Error),
    #[error("queue {0}: its rings do not lie in guest RAM")]
    RingOutsideRam(usize),
    #[error("queue {0}: size is not a power of two within the maximum")]
    QueueSize(usize),
    #[error("config access at {offset:#x}+{len} is outside the {size}-byte config space")]
    ConfigRange { offset: u32, len: u32, size: u32 },
    #[error("the restarted backend offers features {now:#x}, the old one {was:#x}")]
    Changed { was: u64, now: u64 },
}

fn req(what: &'static str) -> impl FnOnce(vhost::Error) -> VhostError {
    move |source| VhostError::Request { what, source }
}

/// A connected vhost-user backend and what is needed to replay it.
pub struct VhostDevice {
    frontend: Frontend,
    /// What the backend offers the guest (masked).
    pub offered: u64,
    protocol: bool,
    config_size: u32,
    /// Per queue: the eventfd KVM signals on QueueNotify, and the one the
    /// backend signals when it used buffers.
    pub kicks: Vec<EventFd>,
    pub calls: Vec<EventFd>,
    started: Vec<bool>,
}

/// A fresh connection after the handshake every (re)connect begins with.
struct Handshake {
    frontend: Frontend,
    backend_features: u64,
    protocol: bool,
}

/// Owner, features, protocol features and the memory table.
fn handshake(
    stream: UnixStream,
    queues: usize,
    mem: &GuestMemoryMmap,
    memfd: &impl AsRawFd,
) -> Result<Handshake, VhostError> {
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(VhostError::Socket)?;
    stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .map_err(VhostError::Socket)?;
    let mut frontend = Frontend::from_stream(stream, queues as u64);
    frontend.set_owner().map_err(req("SET_OWNER"))?;
    let backend_features = frontend.get_features().map_err(req("GET_FEATURES"))?;
    let protocol = backend_features & PROTOCOL_FEATURES != 0;
    if protocol {
        let offered = frontend
            .get_protocol_features()
            .map_err(req("GET_PROTOCOL_FEATURES"))?;
        let wanted = offered & VhostUserProtocolFeatures::CONFIG;
        frontend
            .set_protocol_features(wanted)
            .map_err(req("SET_PROTOCOL_FEATURES"))?;
    }
    frontend
        .set_mem_table(&memory_table(mem, memfd))
        .map_err(req("SET_MEM_TABLE"))?;
    Ok(Handshake {
        frontend,
        backend_features,
        protocol,
    })
}

impl VhostDevice {
    /// Handshake: owner, features, protocol features, memory table, call fds.
    pub fn connect(
        stream: UnixStream,
        queues: usize,
        config_size: u32,
        mem: &GuestMemoryMmap,
        memfd: &impl AsRawFd,
    ) -> Result<VhostDevice, VhostError> {
        let Handshake {
            frontend,
            backend_features,
            protocol,
        } = handshake(stream, queues, mem, memfd)?;
        let config_size = if protocol { config_size } else { 0 };
        let new_fd =
            || EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(VhostError::EventFd);
        let kicks = (0..queues)
            .map(|_| new_fd())
            .collect::<Result<Vec<_>, _>>()?;
        let calls = (0..queues)
            .map(|_| new_fd())
            .collect::<Result<Vec<_>, _>>()?;
        for (i, call) in calls.iter().enumerate() {
            frontend
                .set_vring_call(i, call)
                .map_err(req("SET_VRING_CALL"))?;
        }
        Ok(VhostDevice {
            frontend,
            offered: backend_features & GUEST_FEATURE_MASK,
            protocol,
            config_size,
            kicks,
            calls,
            started: vec![false; queues],
        })
    }

    /// Connects to the device's restarted backend on `stream` and replays
    /// what the old one was told: the memory table, the guest's features
    /// (if it got to FEATURES_OK) and every started ring (if it got to
    /// DRIVER_OK), keeping the kick and call eventfds (KVM and the vm
    /// process hold them). A ring's base is the used index in guest memory:
    /// the old backend's last used entry. That is right for a backend that
    /// completes requests in order (cordon's console, rng and block: each
    /// serves a ring on one thread, completing each chain before popping
    /// the next); a chain popped but not completed when the backend died is
    /// popped again. `status` and `acked` are the transport's.
    pub fn reconnect(
        &mut self,
        stream: UnixStream,
        mem: &GuestMemoryMmap,
        memfd: &impl AsRawFd,
        queues: &[QueueConfig],
        status: u32,
        acked: u64,
    ) -> Result<(), VhostError> {
        let handshake = handshake(stream, self.kicks.len(), mem, memfd)?;
        let offered = handshake.backend_features & GUEST_FEATURE_MASK;
        if offered != self.offered || handshake.protocol != self.protocol {
            return Err(VhostError::Changed {
                was: self.offered,
                now: offered,
            });
        }
        self.frontend = handshake.frontend;
        self.started = vec![false; self.kicks.len()];
        for (i, call) in self.calls.iter().enumerate() {
            self.frontend
                .set_vring_call(i, call)
                .map_err(req("SET_VRING_CALL"))?;
        }
        if status & mmio_status::FEATURES_OK != 0 {
            self.set_features(acked)?;
        }
        if status & mmio_status::DRIVER_OK != 0 {
            for (i, q) in queues.iter().enumerate().filter(|(_, q)| q.ready) {
                let base = used_index(i, q, mem)?;
                self.start_queue(i, q, mem, base)?;
            }
        }
        Ok(())
    }

    /// FEATURES_OK: tells the backend the guest's (offered) features.
    pub fn set_features(&mut self, acked: u64) -> Result<(), VhostError> {
        let features = (acked & self.offered) | if self.protocol { PROTOCOL_FEATURES } else { 0 };
        self.frontend
            .set_features(features)
            .map_err(req("SET_FEATURES"))
    }

    /// DRIVER_OK: starts every ready queue, after checking its rings.
    pub fn start(
        &mut self,
        queues: &[QueueConfig],
        mem: &GuestMemoryMmap,
    ) -> Result<(), VhostError> {
        for (i, q) in queues.iter().enumerate().filter(|(_, q)| q.ready) {
            self.start_queue(i, q, mem, 0)?;
        }
        Ok(())
    }

    /// Starts queue `i` at ring index `base`, after checking its rings.
    fn start_queue(
        &mut self,
        i: usize,
        q: &QueueConfig,
        mem: &GuestMemoryMmap,
        base: u16,
    ) -> Result<(), VhostError> {
        if !q.size_ok() {
            return Err(VhostError::QueueSize(i));
        }
        let data = ring_addresses(i, q, mem)?;
        self.frontend
            .set_vring_num(i, q.num)
            .map_err(req("SET_VRING_NUM"))?;
        self.frontend
            .set_vring_addr(i, &data)
            .map_err(req("SET_VRING_ADDR"))?;
        self.frontend
            .set_vring_base(i, base)
            .map_err(req("SET_VRING_BASE"))?;
        // Again on every start: GET_VRING_BASE (a reset) makes backends
        // drop the call fd (vhost-user-backend does).
        self.frontend
            .set_vring_call(i, &self.calls[i])
            .map_err(req("SET_VRING_CALL"))?;
        self.frontend
            .set_vring_kick(i, &self.kicks[i])
            .map_err(req("SET_VRING_KICK"))?;
        if self.protocol {
            self.frontend
                .set_vring_enable(i, true)
                .map_err(req("SET_VRING_ENABLE"))?;
        }
        self.started[i] = true;
        Ok(())
    }

    /// Status 0: stops every started queue (GET_VRING_BASE stops a ring).
    pub fn reset(&mut self) -> Result<(), VhostError> {
        for i in 0..self.started.len() {
            if std::mem::take(&mut self.started[i]) {
                if self.protocol {
                    self.frontend
                        .set_vring_enable(i, false)
                        .map_err(req("SET_VRING_ENABLE"))?;
                }
                self.frontend
                    .get_vring_base(i)
                    .map_err(req("GET_VRING_BASE"))?;
            }
        }
        Ok(())
    }

    fn check_config(&self, offset: u32, len: u32) -> Result<(), VhostError> {
        let size = self.config_size;
        if offset.checked_add(len).is_none_or(|end| end > size) || len == 0 {
            return Err(VhostError::ConfigRange { offset, len, size });
        }
        Ok(())
    }

    /// `len` bytes at `offset` of the device config space. The whole space
    /// is fetched and sliced here: some backends (QEMU's vhost-user-blk
    /// export among them) ignore GET_CONFIG's offset.
    pub fn read_config(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, VhostError> {
        self.check_config(offset, len)?;
        let buf = vec![0u8; self.config_size as usize];
        let (_, reply) = self
            .frontend
            .get_config(0, self.config_size, VhostUserConfigFlags::WRITABLE, &buf)
            .map_err(req("GET_CONFIG"))?;
        // The vhost crate checked the reply's size against ours.
        Ok(reply
            .get(offset as usize..(offset + len) as usize)
            .map(<[u8]>::to_vec)
            .unwrap_or_default())
    }

    /// SET_CONFIG with `data` at `offset`.
    pub fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<(), VhostError> {
        self.check_config(offset, data.len() as u32)?;
        self.frontend
            .set_config(offset, VhostUserConfigFlags::WRITABLE, data)
            .map_err(req("SET_CONFIG"))
    }
}

/// The memory table: every RAM region, as an offset into the memfd.
fn memory_table(mem: &GuestMemoryMmap, memfd: &impl AsRawFd) -> Vec<VhostUserMemoryRegionInfo> {
    let mut offset = 0;
    mem.iter()
        .map(|region| {
            let info = VhostUserMemoryRegionInfo {
                guest_phys_addr: region.start_addr().raw_value(),
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
                mmap_offset: offset,
                mmap_handle: memfd.as_raw_fd(),
            };
            offset += region.len();
            info
        })
        .collect()
}

/// The used ring's index (`idx`, after its 2-byte flags) as the guest's
/// memory holds it: where the last backend stopped.
fn used_index(index: usize, q: &QueueConfig, mem: &GuestMemoryMmap) -> Result<u16, VhostError> {
    let at = q
        .device
        .checked_add(2)
        .ok_or(VhostError::RingOutsideRam(index))?;
    mem.read_obj::<u16>(GuestAddress(at))
        .map(u16::from_le)
        .map_err(|_| VhostError::RingOutsideRam(index))
}

/// The frontend addresses of a queue's rings, after checking that each lies
/// entirely in one RAM region (the guest chose them).
fn ring_addresses(
    index: usize,
    q: &QueueConfig,
    mem: &GuestMemoryMmap,
) -> Result<VringConfigData, VhostError> {
    let num = u64::from(q.num);
    let host = |gpa: u64, len: u64, align: u64| -> Result<u64, VhostError> {
        let outside = || VhostError::RingOutsideRam(index);
        // Contiguous in the host mapping only if one region holds it all.
        let region = mem.find_region(GuestAddress(gpa)).ok_or_else(outside)?;
        let region_end = region.start_addr().raw_value() + region.len();
        if !gpa.is_multiple_of(align) || gpa.checked_add(len).is_none_or(|end| end > region_end) {
            return Err(outside());
        }
        let ptr = mem
            .get_host_address(GuestAddress(gpa))
            .map_err(|_| outside())?;
        Ok(ptr as u64)
    };
    Ok(VringConfigData {
        queue_max_size: q.max,
        queue_size: q.num,
        flags: 0,
        desc_table_addr: host(q.desc, 16 * num, 16)?,
        avail_ring_addr: host(q.driver, 6 + 2 * num, 2)?,
        used_ring_addr: host(q.device, 6 + 8 * num, 4)?,
        log_addr: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_outside_ram_are_refused() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let ok = QueueConfig {
            max: 256,
            num: 256,
            ready: true,
            desc: 0x1000,
            driver: 0x2000,
            device: 0x3000,
        };
        assert!(ring_addresses(0, &ok, &mem).is_ok());
        let far = QueueConfig {
            desc: 0xdead_0000_0000,
            ..ok
        };
        assert!(matches!(
            ring_addresses(0, &far, &mem),
            Err(VhostError::RingOutsideRam(0))
        ));
        let straddles = QueueConfig {
            device: 0x10_0000 - 8,
            ..ok
        };
        assert!(ring_addresses(1, &straddles, &mem).is_err());
        let misaligned = QueueConfig { desc: 0x1008, ..ok };
        assert!(ring_addresses(2, &misaligned, &mem).is_err());
    }
}
