//! The driver's and the vm process's side of a vhost-user device, for
//! the backends' integration tests: the `vhost` crate's frontend, guest
//! memory in a file the backend maps too, split rings driven by hand.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::virtio_config::{
    VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_PACKED,
    VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use vm_memory::{Address, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::tempfile::TempFile;

pub const MEM_SIZE: usize = 1 << 20;
pub const QUEUE_SIZE: u16 = 16;
pub const BUFFERS: u64 = 0x8_0000;
/// Never offered: nothing here implements them.
pub const FORBIDDEN: [u32; 4] = [
    VIRTIO_F_RING_PACKED,
    VIRTIO_F_ACCESS_PLATFORM,
    VIRTIO_F_NOTIFICATION_DATA,
    VIRTIO_F_RING_RESET,
];

/// A socket path nobody else uses.
pub fn socket_path(name: &str) -> PathBuf {
    let file = TempFile::new_with_prefix(format!("/tmp/cordon-{name}-")).unwrap();
    PathBuf::from(format!("{}.sock", file.as_path().display()))
}

/// File-backed guest memory the backend maps too, like the vm's memfd.
pub fn guest_memory() -> (GuestMemoryMmap, TempFile) {
    let backing = TempFile::new_with_prefix("/tmp/cordon-mem-").unwrap();
    backing.as_file().set_len(MEM_SIZE as u64).unwrap();
    let file = backing.as_file().try_clone().unwrap();
    let range = (GuestAddress(0), MEM_SIZE, Some(FileOffset::new(file, 0)));
    (
        GuestMemoryMmap::from_ranges_with_files([range]).unwrap(),
        backing,
    )
}

/// One split ring in guest memory, driven from the driver's side.
pub struct Ring {
    pub index: usize,
    desc: u64,
    kick: EventFd,
    call: EventFd,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
    /// Used entries up to here were signalled.
    signalled: u16,
}

impl Ring {
    pub fn new(index: usize) -> Ring {
        Ring {
            index,
            desc: 0x1_0000 * (index as u64 + 1),
            kick: EventFd::new(EFD_NONBLOCK).unwrap(),
            call: EventFd::new(EFD_NONBLOCK).unwrap(),
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
            signalled: 0,
        }
    }

    pub fn avail(&self) -> u64 {
        self.desc + 0x1000
    }

    pub fn used(&self) -> u64 {
        self.desc + 0x2000
    }

    /// SET_VRING_NUM/ADDR/BASE/CALL/KICK, then enable.
    pub fn set_up(&self, fe: &mut Frontend, mem: &GuestMemoryMmap) {
        self.set_up_as(fe, mem, self.index);
    }

    /// [`Ring::set_up`] as the device's queue `queue`.
    pub fn set_up_as(&self, fe: &mut Frontend, mem: &GuestMemoryMmap, queue: usize) {
        let host = mem.get_host_address(GuestAddress(0)).unwrap() as u64;
        let config = VringConfigData {
            queue_max_size: 256,
            queue_size: QUEUE_SIZE,
            flags: 0,
            desc_table_addr: host + self.desc,
            used_ring_addr: host + self.used(),
            avail_ring_addr: host + self.avail(),
            log_addr: None,
        };
        fe.set_vring_num(queue, QUEUE_SIZE).unwrap();
        fe.set_vring_addr(queue, &config).unwrap();
        fe.set_vring_base(queue, 0).unwrap();
        fe.set_vring_call(queue, &self.call).unwrap();
        fe.set_vring_kick(queue, &self.kick).unwrap();
        fe.set_vring_enable(queue, true).unwrap();
    }

    /// Makes one chain of (address, length, device-writable) available and
    /// kicks.
    pub fn post(&mut self, mem: &GuestMemoryMmap, bufs: &[(u64, u32, bool)]) {
        let head = self.next_desc;
        for (i, &(addr, len, writable)) in bufs.iter().enumerate() {
            let index = (head + i as u16) % QUEUE_SIZE;
            let mut flags = if writable { VRING_DESC_F_WRITE } else { 0 } as u16;
            if i + 1 < bufs.len() {
                flags |= VRING_DESC_F_NEXT as u16;
            }
            let at = GuestAddress(self.desc + 16 * u64::from(index));
            mem.write_obj(addr, at).unwrap();
            mem.write_obj(len, at.unchecked_add(8)).unwrap();
            mem.write_obj(flags, at.unchecked_add(12)).unwrap();
            mem.write_obj((index + 1) % QUEUE_SIZE, at.unchecked_add(14))
                .unwrap();
        }
        self.next_desc = (head + bufs.len() as u16) % QUEUE_SIZE;
        let slot = self.avail() + 4 + 2 * u64::from(self.avail_idx % QUEUE_SIZE);
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx, GuestAddress(self.avail() + 2))
            .unwrap();
        self.kick.write(1).unwrap();
    }

    /// Waits for the next used entry and for a call covering it (one call
    /// may cover several entries); returns (id, len).
    pub fn wait_used(&mut self, mem: &GuestMemoryMmap) -> (u32, u32) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let used = GuestAddress(self.used() + 2);
        let used_idx = || mem.read_obj::<u16>(used).unwrap();
        while used_idx() == self.used_seen {
            assert!(
                Instant::now() < deadline,
                "ring {}: no used entry",
                self.index
            );
            thread::sleep(Duration::from_millis(1));
        }
        let elem = self.used() + 4 + 8 * u64::from(self.used_seen % QUEUE_SIZE);
        self.used_seen = self.used_seen.wrapping_add(1);
        // The backend writes the used index, then signals.
        while self.signalled < self.used_seen {
            if self.call.read().is_ok() {
                self.signalled = used_idx();
                continue;
            }
            assert!(Instant::now() < deadline, "ring {}: no call", self.index);
            thread::sleep(Duration::from_millis(1));
        }
        let id = mem.read_obj(GuestAddress(elem)).unwrap();
        (id, mem.read_obj(GuestAddress(elem + 4)).unwrap())
    }
}

/// Reads `len` bytes, failing the test (not hanging it) after 5 s.
pub fn read_within(mut reader: impl Read + Send + 'static, len: usize) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0; len];
        let _ = tx.send(reader.read_exact(&mut buf).map(|()| buf));
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("output")
        .unwrap()
}

/// Joins a backend thread, failing the test (not hanging it) after 5 s.
pub fn join_within<T>(handle: thread::JoinHandle<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "backend did not return");
        thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap()
}

/// Connects and negotiates the way the vm process does; returns the
/// backend's features and protocol features.
pub fn negotiate(path: &PathBuf, queues: u64) -> (Frontend, u64, VhostUserProtocolFeatures) {
    let (fe, features, protocol, _) = negotiate_raw(path, queues);
    (fe, features, protocol)
}

/// [`negotiate`], also returning the connection for raw messages.
pub fn negotiate_raw(
    path: &PathBuf,
    queues: u64,
) -> (Frontend, u64, VhostUserProtocolFeatures, UnixStream) {
    negotiate_on(UnixStream::connect(path).unwrap(), queues)
}

/// [`negotiate_raw`] on a connection made beforehand.
pub fn negotiate_on(
    stream: UnixStream,
    queues: u64,
) -> (Frontend, u64, VhostUserProtocolFeatures, UnixStream) {
    let raw = stream.try_clone().unwrap();
    let mut fe = Frontend::from_stream(stream, queues);
    fe.set_owner().unwrap();
    let features = fe.get_features().unwrap();
    for bit in [VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX] {
        assert_ne!(features & 1 << bit, 0, "feature {bit} offered");
    }
    assert_ne!(
        features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits(),
        0
    );
    for bit in FORBIDDEN {
        assert_eq!(features & 1 << bit, 0, "feature {bit} not offered");
    }
    let acked = 1 << VIRTIO_F_VERSION_1 | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
    fe.set_features(acked).unwrap();
    let protocol = fe.get_protocol_features().unwrap();
    fe.set_protocol_features(protocol).unwrap();
    (fe, features, protocol, raw)
}

/// Sends GET_CONFIG for `size` bytes at `offset` by hand; returns the
/// payload size of the reply (0: the backend refused).
pub fn raw_get_config(sock: &mut UnixStream, offset: u32, size: u32) -> u32 {
    const GET_CONFIG: u32 = 24;
    let mut msg = Vec::new();
    for word in [GET_CONFIG, 1, 12 + size, offset, size, 0] {
        msg.extend_from_slice(&word.to_le_bytes());
    }
    msg.resize(msg.len() + size as usize, 0);
    sock.write_all(&msg).unwrap();
    let mut reply = [0u8; 24];
    sock.read_exact(&mut reply).unwrap();
    let word = |i: usize| u32::from_le_bytes(reply[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(
        (word(0), word(2) - 12, word(3)),
        (GET_CONFIG, word(4), offset)
    );
    let mut payload = vec![0u8; word(4) as usize];
    sock.read_exact(&mut payload).unwrap();
    assert!(payload.iter().all(|&b| b == 0));
    word(4)
}

pub fn set_mem_table(fe: &mut Frontend, mem: &GuestMemoryMmap) {
    let regions: Vec<_> = mem
        .iter()
        .map(|r| VhostUserMemoryRegionInfo::from_guest_region(r).unwrap())
        .collect();
    fe.set_mem_table(&regions).unwrap();
}
