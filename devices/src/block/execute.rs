//! Carrying out a parsed request against the disk.

use std::io;

use thiserror::Error;
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD,
    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
};
use vm_memory::{ByteValued, Bytes, GuestMemory};

use super::config::{MAX_DISCARD_SECTORS, MAX_DISCARD_SEG, MAX_WRITE_ZEROES_SECTORS};
use super::disk::{Disk, SECTOR_SIZE};
use super::request::{gather, Kind, Request};
use super::transfer::{read_to_guest, write_from_guest};

/// struct virtio_blk_discard_write_zeroes.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct DiscardSegment {
    sector: u64,
    num_sectors: u32,
    flags: u32,
}
// SAFETY: plain integers, no padding (8 + 4 + 4 bytes, 8-aligned).
unsafe impl ByteValued for DiscardSegment {}

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("request type {0} not supported")]
    Unsupported(u32),
    #[error("write to a read-only disk")]
    ReadOnly,
    #[error("data length {0} is not a multiple of 512")]
    Unaligned(u64),
    #[error("sectors {sector}+{len} bytes outside the disk")]
    OutOfRange { sector: u64, len: u64 },
    #[error("bad discard/write-zeroes segment list")]
    BadSegments,
    #[error("flags {0:#x} not supported in a discard/write-zeroes segment")]
    Flags(u32),
    #[error("I/O on the image")]
    Io(#[source] io::Error),
}

impl ExecError {
    /// The status byte reported to the guest.
    pub fn status(&self) -> u8 {
        match self {
            ExecError::Unsupported(_) | ExecError::Flags(_) => VIRTIO_BLK_S_UNSUPP as u8,
            _ => VIRTIO_BLK_S_IOERR as u8,
        }
    }
}

/// Executes `req` and returns the number of bytes written into the
/// guest's data buffers (not counting the status byte).
///
/// FLUSH returns only once fdatasync on the image has returned: the status
/// byte and the used ring entry are written by the caller after this, so
/// the guest never sees a flush complete before the data is on the disk.
pub fn execute<M: GuestMemory + ?Sized>(
    req: &Request,
    disk: &Disk,
    mem: &M,
) -> Result<u32, ExecError> {
    let writes = matches!(req.kind, Kind::Out | Kind::Discard | Kind::WriteZeroes);
    if writes && disk.read_only() {
        return Err(ExecError::ReadOnly);
    }
    match req.kind {
        Kind::In | Kind::Out => {
            let len = req.data_len();
            if !len.is_multiple_of(SECTOR_SIZE) {
                return Err(ExecError::Unaligned(len));
            }
            let offset = disk.range(req.sector, len).ok_or(ExecError::OutOfRange {
                sector: req.sector,
                len,
            })?;
            if req.kind == Kind::In {
                read_to_guest(disk.file(), offset, mem, &req.data).map_err(ExecError::Io)?;
                // len <= total chain length, which virtio-queue caps at 2^32 - 1.
                Ok(len as u32)
            } else {
                write_from_guest(disk.file(), offset, mem, &req.data).map_err(ExecError::Io)?;
                Ok(0)
            }
        }
        // Item 7's guarantee: fdatasync, in this process, before returning.
        Kind::Flush => disk.flush().map(|()| 0).map_err(ExecError::Io),
        Kind::GetId => get_id(req, disk, mem),
        Kind::Discard | Kind::WriteZeroes => discard_or_zero(req, disk, mem).map(|()| 0),
        Kind::Unsupported(t) => Err(ExecError::Unsupported(t)),
    }
}

fn get_id<M: GuestMemory + ?Sized>(req: &Request, disk: &Disk, mem: &M) -> Result<u32, ExecError> {
    let mut left = disk.serial().as_slice();
    let mut written = 0;
    for seg in &req.data {
        let n = left.len().min(seg.len as usize);
        mem.write_slice(&left[..n], seg.addr)
            .map_err(|e| ExecError::Io(io::Error::other(e)))?;
        left = &left[n..];
        written += n as u32;
    }
    Ok(written)
}

fn discard_or_zero<M: GuestMemory + ?Sized>(
    req: &Request,
    disk: &Disk,
    mem: &M,
) -> Result<(), ExecError> {
    let discard = req.kind == Kind::Discard;
    if discard && !disk.can_discard() {
        return Err(ExecError::Unsupported(VIRTIO_BLK_T_DISCARD));
    }
    let one = size_of::<DiscardSegment>() as u64;
    let len = req.data_len();
    let count = len / one;
    if !len.is_multiple_of(one) || count == 0 || count > u64::from(MAX_DISCARD_SEG) {
        return Err(ExecError::BadSegments);
    }
    let max = if discard {
        MAX_DISCARD_SECTORS
    } else {
        MAX_WRITE_ZEROES_SECTORS
    };
    let mut bytes = vec![0u8; len as usize];
    gather(mem, &req.data, &mut bytes).map_err(|_| ExecError::BadSegments)?;
    // Check every segment before touching the disk.
    let mut segs = Vec::with_capacity(count as usize);
    for raw in bytes.chunks_exact(one as usize) {
        let mut seg = DiscardSegment::default();
        seg.as_mut_slice().copy_from_slice(raw);
        let (sector, sectors, flags) = (
            u64::from_le(seg.sector),
            u32::from_le(seg.num_sectors),
            u32::from_le(seg.flags),
        );
        // Discard takes no flags, write-zeroes only UNMAP (virtio 1.2, 5.2.6.2).
        let allowed = if discard {
            0
        } else {
            VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
        };
        if flags & !allowed != 0 {
            return Err(ExecError::Flags(flags));
        }
        if sectors > max {
            return Err(ExecError::BadSegments);
        }
        let len = u64::from(sectors) * SECTOR_SIZE;
        let offset = disk
            .range(sector, len)
            .ok_or(ExecError::OutOfRange { sector, len })?;
        segs.push((offset, len, flags != 0));
    }
    for (offset, len, unmap) in segs {
        let done = if discard || (unmap && disk.can_discard()) {
            disk.punch_hole(offset, len)
        } else {
            disk.write_zeroes(offset, len)
        };
        done.map_err(ExecError::Io)?;
    }
    Ok(())
}

/// The status byte for an outcome.
pub fn status_of(result: &Result<u32, ExecError>) -> u8 {
    match result {
        Ok(_) => VIRTIO_BLK_S_OK as u8,
        Err(e) => e.status(),
    }
}
