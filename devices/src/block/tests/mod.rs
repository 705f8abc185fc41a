//! Request logic driven through virtio-queue's MockSplitQueue against a
//! temp file: no KVM, no sockets.

mod hostile;
mod requests;

use std::os::unix::fs::FileExt;

use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::tempfile::TempFile;

use super::inflight::InflightLog;
use super::{process_queue, Disk, NoInflight};

pub const QUEUE: u16 = 16;
pub const MEM_SIZE: u64 = 0x100_0000;
pub const HDR: u64 = 0x8_0000;
pub const STATUS: u64 = 0x9_0000;
/// Data buffers start here.
pub const DATA: u64 = 0x10_0000;

/// Guest memory, an image whose byte i is `pattern(i)`, and the disk on it.
pub struct Rig {
    pub mem: GuestMemoryMmap,
    pub image: TempFile,
    pub disk: Disk,
}

pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

impl Rig {
    pub fn new(bytes: u64, read_only: bool) -> Rig {
        Rig::with_serial(bytes, read_only, None)
    }

    pub fn with_serial(bytes: u64, read_only: bool, serial: Option<&str>) -> Rig {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap();
        let image = TempFile::new_with_prefix("/tmp/cordon-block-test").unwrap();
        let data: Vec<u8> = (0..bytes).map(pattern).collect();
        image.as_file().write_all_at(&data, 0).unwrap();
        let file = image.as_file().try_clone().unwrap();
        let disk = Disk::new(file, read_only, serial).unwrap();
        Rig { mem, image, disk }
    }

    /// A readable header descriptor for `type_` at `sector`.
    pub fn header(&self, type_: u32, sector: u64) -> RawDescriptor {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&type_.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&h, GuestAddress(HDR)).unwrap();
        desc(HDR, 16, false)
    }

    pub fn image_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.image
            .as_file()
            .read_exact_at(&mut buf, offset)
            .unwrap();
        buf
    }

    pub fn guest_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    /// A good read (after whatever came before) still works.
    pub fn assert_reads_sector_0(&self) {
        let used = self.run(&[
            self.header(VIRTIO_BLK_T_IN, 0),
            desc(DATA, 512, true),
            status_desc(),
        ]);
        assert_eq!(used.status, OK);
        assert_eq!(self.guest_bytes(DATA, 512), self.image_bytes(0, 512));
    }

    /// Chains `descs` (NEXT flags and indices set) and processes the queue.
    pub fn run(&self, descs: &[RawDescriptor]) -> Used {
        let chained: Vec<_> = descs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let d = SplitDescriptor::from(*d);
                let last = i == descs.len() - 1;
                let flags = if last {
                    d.flags()
                } else {
                    d.flags() | VRING_DESC_F_NEXT as u16
                };
                RawDescriptor::from(SplitDescriptor::new(
                    d.addr().0,
                    d.len(),
                    flags,
                    i as u16 + 1,
                ))
            })
            .collect();
        self.run_raw(&chained, &[0])
    }

    /// Writes `table` as the descriptor table, offers `heads`, processes.
    pub fn run_raw(&self, table: &[RawDescriptor], heads: &[u16]) -> Used {
        self.run_with(table, heads, &mut NoInflight)
    }

    pub fn run_with(
        &self,
        table: &[RawDescriptor],
        heads: &[u16],
        log: &mut impl InflightLog,
    ) -> Used {
        let (vq, mut q) = self.offer(table, heads);
        process_queue(&mut q, &self.mem, &self.disk, log).unwrap();
        Used::read(&vq, &self.mem)
    }

    /// A fresh queue at address 0 with `table` and `heads` offered.
    pub fn offer(
        &self,
        table: &[RawDescriptor],
        heads: &[u16],
    ) -> (MockSplitQueue<'_, GuestMemoryMmap>, Queue) {
        self.mem
            .write_slice(&[0u8; 0x1000], GuestAddress(0))
            .unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        let vq = MockSplitQueue::new(&self.mem, QUEUE);
        for (i, d) in table.iter().enumerate() {
            vq.desc_table().store(i as u16, *d).unwrap();
        }
        for (i, h) in heads.iter().enumerate() {
            vq.avail().ring().ref_at(i).unwrap().store(u16::to_le(*h));
        }
        vq.avail().idx().store(u16::to_le(heads.len() as u16));
        let q: Queue = vq.create_queue().unwrap();
        (vq, q)
    }
}

/// What the device reported for the first chain.
#[derive(Debug)]
pub struct Used {
    /// Entries in the used ring.
    pub count: u16,
    pub len: u32,
    /// The byte at STATUS (0xff if untouched).
    pub status: u8,
}

impl Used {
    fn read(vq: &MockSplitQueue<'_, GuestMemoryMmap>, mem: &GuestMemoryMmap) -> Used {
        let count = u16::from_le(vq.used().idx().load());
        let len = vq.used().ring().ref_at(0).unwrap().load().len();
        let status = mem.read_obj(GuestAddress(STATUS)).unwrap();
        Used { count, len, status }
    }
}

pub fn desc(addr: u64, len: u32, writable: bool) -> RawDescriptor {
    let flags = if writable {
        VRING_DESC_F_WRITE as u16
    } else {
        0
    };
    RawDescriptor::from(SplitDescriptor::new(addr, len, flags, 0))
}

pub fn status_desc() -> RawDescriptor {
    desc(STATUS, 1, true)
}

pub const OK: u8 = VIRTIO_BLK_S_OK as u8;
pub const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;
pub const UNSUPP: u8 = VIRTIO_BLK_S_UNSUPP as u8;
