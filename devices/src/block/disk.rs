//! The image file and what the host can do with it: capacity, serial,
//! whether holes can be punched. All access is positional (pread/pwrite,
//! fallocate, fdatasync), so one `Disk` serves every queue without locks.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicBool, Ordering};

use virtio_bindings::virtio_blk::VIRTIO_BLK_ID_BYTES;
use vmm_sys_util::fallocate::{fallocate, FallocateMode};

use super::BlockError;

/// Bytes per virtio-blk sector, whatever the image's own block size.
pub const SECTOR_SIZE: u64 = 512;

/// Length of the GET_ID answer.
pub const SERIAL_LEN: usize = VIRTIO_BLK_ID_BYTES as usize;

/// A raw image, already open.
pub struct Disk {
    file: File,
    sectors: u64,
    read_only: bool,
    serial: [u8; SERIAL_LEN],
    punch_hole: bool,
    /// Cleared the first time FALLOC_FL_ZERO_RANGE fails as unsupported
    /// (tmpfs, for one); WRITE_ZEROES then writes zero buffers.
    zero_range: AtomicBool,
}

impl Disk {
    /// Takes over `file`. The capacity is the file's size in whole sectors:
    /// the tail of a size that is not a multiple of 512 is not addressable
    /// (never read, never written). `serial` defaults to the image's device
    /// and inode numbers in hex, `DEV-INO`, cut to 20 bytes.
    pub fn new(mut file: File, read_only: bool, serial: Option<&str>) -> Result<Disk, BlockError> {
        let size = file.seek(SeekFrom::End(0)).map_err(BlockError::Image)?;
        let serial = match serial {
            Some(s) if s.len() > SERIAL_LEN => return Err(BlockError::SerialTooLong(s.len())),
            Some(s) => s.to_owned(),
            None => {
                let meta = file.metadata().map_err(BlockError::Image)?;
                format!("{:x}-{:x}", meta.dev(), meta.ino())
            }
        };
        let mut id = [0u8; SERIAL_LEN];
        let n = serial.len().min(SERIAL_LEN);
        id[..n].copy_from_slice(&serial.as_bytes()[..n]);
        let punch_hole = !read_only && probe_punch_hole(&file, size);
        Ok(Disk {
            file,
            sectors: size / SECTOR_SIZE,
            read_only,
            serial: id,
            punch_hole,
            zero_range: AtomicBool::new(true),
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn serial(&self) -> &[u8; SERIAL_LEN] {
        &self.serial
    }

    /// Whether DISCARD (and unmapping WRITE_ZEROES) can punch holes.
    pub fn can_discard(&self) -> bool {
        self.punch_hole
    }

    /// The byte offset of `sector` if `len` bytes from there lie within the
    /// capacity; `None` on overflow or past the end.
    pub fn range(&self, sector: u64, len: u64) -> Option<u64> {
        let start = sector.checked_mul(SECTOR_SIZE)?;
        let end = start.checked_add(len)?;
        (end <= self.sectors * SECTOR_SIZE).then_some(start)
    }

    /// Reaches the disk (fdatasync) with every write completed so far.
    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Deallocates `len` bytes at `offset`; they read as zeroes after.
    pub fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        fallocate(&self.file, FallocateMode::PunchHole, true, offset, len).map_err(io::Error::from)
    }

    /// Makes `len` bytes at `offset` read as zeroes, keeping them allocated.
    pub fn write_zeroes(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.zero_range.load(Ordering::Relaxed) {
            match fallocate(&self.file, FallocateMode::ZeroRange, true, offset, len) {
                Ok(()) => return Ok(()),
                Err(e) if e.errno() == libc::EOPNOTSUPP => {
                    self.zero_range.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        write_zero_buffers(&self.file, offset, len)
    }
}

fn write_zero_buffers(file: &File, mut offset: u64, len: u64) -> io::Result<()> {
    const CHUNK: u64 = 64 * 1024;
    let zeroes = vec![0u8; CHUNK.min(len) as usize];
    let end = offset + len;
    while offset < end {
        let n = (end - offset).min(CHUNK) as usize;
        file.write_all_at(&zeroes[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}

/// Punching a hole past the end of the file with KEEP_SIZE changes nothing,
/// but fails where the file system cannot punch holes at all.
fn probe_punch_hole(file: &File, size: u64) -> bool {
    let at = size.next_multiple_of(4096) + 4096;
    fallocate(file, FallocateMode::PunchHole, true, at, 4096).is_ok()
}
