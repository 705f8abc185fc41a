//! Parsing one virtio-blk request out of a descriptor chain, treating every
//! field as hostile. The layout is not assumed (virtio 1.x, 2.7.4): the
//! header is the first 16 bytes of the device-readable part, the status the
//! last byte of the device-writable part, data what lies between.

use std::ops::Deref;

use thiserror::Error;
use virtio_bindings::virtio_blk::*;
use virtio_queue::DescriptorChain;
use vm_memory::{Address, ByteValued, Bytes, GuestAddress, GuestMemory, Permissions};

use super::config::SEG_MAX;

/// Descriptors kept per request: the data segments plus header and status,
/// with room for a header or status in descriptors of their own.
pub const MAX_DESCRIPTORS: usize = SEG_MAX as usize + 4;

/// struct virtio_blk_outhdr.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct OutHeader {
    pub type_: u32,
    pub ioprio: u32,
    pub sector: u64,
}
// SAFETY: plain integers, no padding (4 + 4 + 8 bytes, 8-aligned).
unsafe impl ByteValued for OutHeader {}

/// A contiguous range of guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: GuestAddress,
    pub len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    In,
    Out,
    Flush,
    GetId,
    Discard,
    WriteZeroes,
    Unsupported(u32),
}

impl Kind {
    fn from_type(t: u32) -> Kind {
        match t {
            VIRTIO_BLK_T_IN => Kind::In,
            VIRTIO_BLK_T_OUT => Kind::Out,
            VIRTIO_BLK_T_FLUSH => Kind::Flush,
            VIRTIO_BLK_T_GET_ID => Kind::GetId,
            VIRTIO_BLK_T_DISCARD => Kind::Discard,
            VIRTIO_BLK_T_WRITE_ZEROES => Kind::WriteZeroes,
            other => Kind::Unsupported(other),
        }
    }
}

/// A well-formed request. `data` is device-writable for IN and GET_ID,
/// device-readable otherwise; every segment lies inside guest memory.
#[derive(Debug)]
pub struct Request {
    pub kind: Kind,
    pub sector: u64,
    pub data: Vec<Segment>,
    pub status: GuestAddress,
}

impl Request {
    pub fn data_len(&self) -> u64 {
        self.data.iter().map(|s| u64::from(s.len)).sum()
    }
}

/// Why a chain is not a request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty chain or unreadable head descriptor")]
    Empty,
    #[error("chain cut short (loop, longer than the queue, or descriptor outside memory)")]
    Truncated,
    #[error("last descriptor is not a device-writable status byte")]
    NoStatusByte,
    #[error("status byte outside guest memory")]
    StatusOutsideMemory,
    #[error("more than {MAX_DESCRIPTORS} descriptors")]
    TooManyDescriptors,
    #[error("device-readable descriptor after a device-writable one")]
    ReadableAfterWritable,
    #[error("buffer outside guest memory")]
    BufferOutsideMemory,
    #[error("header shorter than 16 bytes")]
    ShortHeader,
}

/// The outcome of parsing: a request, a failure that still has a status
/// byte to report IOERR in, or one that has none.
#[derive(Debug)]
pub enum Parsed {
    Request(Request),
    Failed(GuestAddress, ParseError),
    NoStatus(ParseError),
}

#[derive(Default)]
struct Split {
    readable: Vec<Segment>,
    writable: Vec<Segment>,
    count: usize,
    misordered: bool,
}

/// Parses the chain. Never fails loudly: the caller reports `Failed` with
/// IOERR and returns a `NoStatus` chain to the used ring untouched.
pub fn parse<T>(mut chain: DescriptorChain<T>) -> Parsed
where
    T: Deref,
    T::Target: GuestMemory,
{
    let mut split = Split::default();
    let mut last = None;
    for desc in chain.by_ref() {
        split.count += 1;
        let seg = Segment {
            addr: desc.addr(),
            len: desc.len(),
        };
        if split.count <= MAX_DESCRIPTORS && seg.len > 0 {
            if desc.is_write_only() {
                split.writable.push(seg);
            } else {
                split.misordered |= !split.writable.is_empty();
                split.readable.push(seg);
            }
        }
        last = Some(desc);
    }
    let Some(last) = last else {
        return Parsed::NoStatus(ParseError::Empty);
    };
    if last.has_next() {
        return Parsed::NoStatus(ParseError::Truncated);
    }
    if !last.is_write_only() || last.len() == 0 {
        return Parsed::NoStatus(ParseError::NoStatusByte);
    }
    let mem = chain.memory();
    let status = match last.addr().checked_add(u64::from(last.len()) - 1) {
        Some(a) if mem.check_range(a, 1, Permissions::Write) => a,
        _ => return Parsed::NoStatus(ParseError::StatusOutsideMemory),
    };
    match build(mem, split) {
        Ok((header, data_r, data_w)) => {
            let kind = Kind::from_type(u32::from_le(header.type_));
            let data = match kind {
                Kind::In | Kind::GetId => data_w,
                _ => data_r,
            };
            let sector = u64::from_le(header.sector);
            Parsed::Request(Request {
                kind,
                sector,
                data,
                status,
            })
        }
        Err(e) => Parsed::Failed(status, e),
    }
}

/// Checks the buffers and splits the header off the readable part and the
/// status byte off the writable part.
fn build<M: GuestMemory + ?Sized>(
    mem: &M,
    mut split: Split,
) -> Result<(OutHeader, Vec<Segment>, Vec<Segment>), ParseError> {
    if split.count > MAX_DESCRIPTORS {
        return Err(ParseError::TooManyDescriptors);
    }
    if split.misordered {
        return Err(ParseError::ReadableAfterWritable);
    }
    let inside = |segs: &[Segment], access| {
        segs.iter().all(|s| {
            s.addr.checked_add(u64::from(s.len)).is_some()
                && mem.check_range(s.addr, s.len as usize, access)
        })
    };
    if !inside(&split.readable, Permissions::Read) || !inside(&split.writable, Permissions::Write) {
        return Err(ParseError::BufferOutsideMemory);
    }
    // The status byte is the last writable byte: parse() saw it there.
    if let Some(seg) = split.writable.last_mut() {
        seg.len -= 1;
        if seg.len == 0 {
            split.writable.pop();
        }
    }
    let mut header = OutHeader::default();
    gather(mem, &split.readable, header.as_mut_slice())?;
    let data = skip(&split.readable, size_of::<OutHeader>() as u64);
    Ok((header, data, split.writable))
}

/// Copies the first `buf.len()` bytes of `segs` into `buf`.
pub fn gather<M: GuestMemory + ?Sized>(
    mem: &M,
    segs: &[Segment],
    buf: &mut [u8],
) -> Result<(), ParseError> {
    let mut done = 0;
    for seg in segs {
        if done == buf.len() {
            break;
        }
        let n = (buf.len() - done).min(seg.len as usize);
        mem.read_slice(&mut buf[done..done + n], seg.addr)
            .map_err(|_| ParseError::BufferOutsideMemory)?;
        done += n;
    }
    if done < buf.len() {
        return Err(ParseError::ShortHeader);
    }
    Ok(())
}

/// `segs` without their first `n` bytes.
fn skip(segs: &[Segment], mut n: u64) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segs.len());
    for seg in segs {
        let len = u64::from(seg.len);
        if n >= len {
            n -= len;
            continue;
        }
        // n < len <= u32::MAX, and the segment was checked not to overflow.
        out.push(Segment {
            addr: seg.addr.unchecked_add(n),
            len: (len - n) as u32,
        });
        n = 0;
    }
    out
}
