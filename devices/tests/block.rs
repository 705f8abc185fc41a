//! The block backend on a real socket, driven by the `vhost` crate's
//! frontend the way the vm process drives it: features, config, a memory
//! table from a memfd, a split ring in that memory, kicks and calls over
//! eventfds, requests checked against the image file.

use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use devices::block::{start_backend, BlockConfig};
use devices::Mode;
use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, Listener, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use vm_memory::{ByteValued, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::tempfile::TempFile;

const SECTORS: u64 = 2048;
const MEM_SIZE: usize = 1 << 20;
const QUEUE: u16 = 16;
/// The split ring: descriptor table, avail ring, used ring.
const DESC: u64 = 0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;
const HDR: u64 = 0x1_0000;
const DATA: u64 = 0x2_0000;
const STATUS: u64 = 0x3_0000;
const OK: u8 = VIRTIO_BLK_S_OK as u8;
const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;

fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Guest memory in a memfd, shared with the backend like the vm process's.
fn guest_memory() -> GuestMemoryMmap {
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new fd
    // (or -1), which the File below then owns.
    let fd = unsafe { libc::memfd_create(c"block-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(MEM_SIZE as u64).unwrap();
    let range = (GuestAddress(0), MEM_SIZE, Some(FileOffset::new(file, 0)));
    GuestMemoryMmap::from_ranges_with_files([range]).unwrap()
}

/// The frontend's side of one block device.
struct Device {
    frontend: Frontend,
    mem: GuestMemoryMmap,
    kick: EventFd,
    call: EventFd,
    image: TempFile,
    backend: thread::JoinHandle<()>,
}

fn start(read_only: bool) -> Device {
    let image = TempFile::new_with_prefix("/tmp/cordon-block-itest").unwrap();
    let data: Vec<u8> = (0..SECTORS * 512 + 100).map(pattern).collect();
    image.as_file().write_all_at(&data, 0).unwrap();
    let socket = PathBuf::from(format!("{}.sock", image.as_path().display()));
    let config = BlockConfig {
        listener: Listener::new(&socket, true).unwrap(),
        mode: Mode::Spawned,
        image: image.as_file().try_clone().unwrap(),
        read_only,
        serial: Some("itest-serial".into()),
    };
    let backend = thread::spawn(move || start_backend(config).unwrap());
    let frontend = Frontend::connect(&socket, 1).unwrap();
    std::fs::remove_file(&socket).unwrap();
    Device {
        frontend,
        mem: guest_memory(),
        kick: EventFd::new(libc::EFD_NONBLOCK).unwrap(),
        call: EventFd::new(libc::EFD_NONBLOCK).unwrap(),
        image,
        backend,
    }
}

impl Device {
    /// Negotiates, checks the config space, sets up ring 0 at address 0.
    /// Returns the backend's features.
    fn set_up(&mut self) -> u64 {
        let fe = &mut self.frontend;
        fe.set_owner().unwrap();
        let features = fe.get_features().unwrap();
        for bit in [
            VIRTIO_F_VERSION_1,
            VIRTIO_BLK_F_SEG_MAX,
            VIRTIO_BLK_F_BLK_SIZE,
        ] {
            assert_ne!(features & 1 << bit, 0, "feature {bit}");
        }
        fe.set_features(features).unwrap();
        let protocol = fe.get_protocol_features().unwrap();
        assert!(protocol.contains(VhostUserProtocolFeatures::CONFIG));
        fe.set_protocol_features(protocol & VhostUserProtocolFeatures::CONFIG)
            .unwrap();

        let (_, config) = fe
            .get_config(0, 60, VhostUserConfigFlags::empty(), &[0; 60])
            .unwrap();
        let capacity = u64::from_le_bytes(config[..8].try_into().unwrap());
        assert_eq!(capacity, SECTORS, "capacity: the file's whole sectors");
        assert_eq!(config[20..24], 512u32.to_le_bytes(), "blk_size");

        let regions: Vec<_> = self
            .mem
            .iter()
            .map(|r| VhostUserMemoryRegionInfo::from_guest_region(r).unwrap())
            .collect();
        fe.set_mem_table(&regions).unwrap();
        // The frontend names rings by its own addresses.
        let host = self.mem.get_host_address(GuestAddress(0)).unwrap() as u64;
        fe.set_vring_num(0, QUEUE).unwrap();
        let addrs = VringConfigData {
            queue_max_size: 256,
            queue_size: QUEUE,
            flags: 0,
            desc_table_addr: host + DESC,
            used_ring_addr: host + USED,
            avail_ring_addr: host + AVAIL,
            log_addr: None,
        };
        fe.set_vring_addr(0, &addrs).unwrap();
        fe.set_vring_base(0, 0).unwrap();
        fe.set_vring_call(0, &self.call).unwrap();
        fe.set_vring_kick(0, &self.kick).unwrap();
        fe.set_vring_enable(0, true).unwrap();
        features
    }

    /// Posts one request (header, `data` as (address, length, writable),
    /// status), kicks, waits for the call; returns (status, used length).
    fn request(&self, type_: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u8, u32) {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&type_.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&h, GuestAddress(HDR)).unwrap();
        self.put(STATUS, 0xffu8);
        let mut descs = vec![(HDR, 16, false)];
        descs.extend_from_slice(data);
        descs.push((STATUS, 1, true));
        let last = descs.len() - 1;
        for (i, &(addr, len, write)) in descs.iter().enumerate() {
            let mut flags = if write { VRING_DESC_F_WRITE as u16 } else { 0 };
            if i < last {
                flags |= VRING_DESC_F_NEXT as u16;
            }
            let d = RawDescriptor::from(Descriptor::new(addr, len, flags, i as u16 + 1));
            self.put(DESC + 16 * i as u64, d);
        }
        // Every earlier request has completed: chain 0 is free again.
        let avail: u16 = self.get(AVAIL + 2);
        let used_before: u16 = self.get(USED + 2);
        self.put(AVAIL + 4 + 2 * u64::from(avail % QUEUE), 0u16);
        // EVENT_IDX is acked: used_event asks for a call once this is used.
        self.put(AVAIL + 4 + 2 * u64::from(QUEUE), used_before);
        self.put(AVAIL + 2, avail.wrapping_add(1));
        self.kick.write(1).unwrap();
        self.wait_call();
        assert_eq!(self.get::<u16>(USED + 2), used_before.wrapping_add(1));
        let slot = USED + 4 + 8 * u64::from(used_before % QUEUE);
        assert_eq!(self.get::<u32>(slot), 0, "used id");
        (self.get(STATUS), self.get(slot + 4))
    }

    fn put<T: ByteValued>(&self, addr: u64, val: T) {
        self.mem.write_obj(val, GuestAddress(addr)).unwrap();
    }

    fn get<T: ByteValued>(&self, addr: u64) -> T {
        self.mem.read_obj(GuestAddress(addr)).unwrap()
    }

    fn wait_call(&self) {
        for _ in 0..500 {
            if self.call.read().is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("no used-buffer notification within 5 s");
    }

    fn guest_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    fn image_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.image
            .as_file()
            .read_exact_at(&mut buf, offset)
            .unwrap();
        buf
    }

    /// Hangs up; a spawned-mode backend must then return.
    fn finish(self) {
        drop(self.frontend);
        self.backend.join().expect("backend thread");
    }
}

#[test]
fn requests_through_a_ring_in_a_shared_memfd() {
    let mut dev = start(false);
    let features = dev.set_up();
    assert_ne!(features & 1 << VIRTIO_BLK_F_FLUSH, 0);
    assert_eq!(features & 1 << VIRTIO_BLK_F_RO, 0);

    dev.mem
        .write_slice(&[0x5a; 1024], GuestAddress(DATA))
        .unwrap();
    let (status, len) = dev.request(VIRTIO_BLK_T_OUT, 7, &[(DATA, 1024, false)]);
    assert_eq!((status, len), (OK, 1));
    assert_eq!(dev.image_bytes(7 * 512, 1024), vec![0x5a; 1024]);

    let segs = [(DATA, 512, true), (DATA + 0x1000, 1024, true)];
    let (status, len) = dev.request(VIRTIO_BLK_T_IN, 6, &segs);
    assert_eq!((status, len), (OK, 1537));
    assert_eq!(dev.guest_bytes(DATA, 512), dev.image_bytes(6 * 512, 512));
    assert_eq!(dev.guest_bytes(DATA + 0x1000, 1024), vec![0x5a; 1024]);

    assert_eq!(dev.request(VIRTIO_BLK_T_FLUSH, 0, &[]), (OK, 1));
    let (status, len) = dev.request(VIRTIO_BLK_T_GET_ID, 0, &[(DATA, 20, true)]);
    assert_eq!((status, len), (OK, 21));
    assert_eq!(dev.guest_bytes(DATA, 12), b"itest-serial");

    let (status, _) = dev.request(VIRTIO_BLK_T_IN, SECTORS, &[(DATA, 512, true)]);
    assert_eq!(status, IOERR, "past the capacity");
    dev.finish();
}

#[test]
fn read_only_disk_refuses_writes() {
    let mut dev = start(true);
    let features = dev.set_up();
    assert_ne!(features & 1 << VIRTIO_BLK_F_RO, 0);
    assert_eq!(features & 1 << VIRTIO_BLK_F_FLUSH, 0);
    dev.mem
        .write_slice(&[0x5a; 512], GuestAddress(DATA))
        .unwrap();
    let (status, _) = dev.request(VIRTIO_BLK_T_OUT, 0, &[(DATA, 512, false)]);
    assert_eq!(status, IOERR);
    let want: Vec<u8> = (0..512).map(pattern).collect();
    assert_eq!(dev.image_bytes(0, 512), want);
    dev.finish();
}
