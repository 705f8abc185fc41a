//! Moving data between the image and guest memory with one preadv/pwritev
//! per request (more only on short transfers), straight into the guest's
//! pages: no bounce buffer. Besides two `ByteValued` impls, this is the
//! block backend's only unsafe code.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use vm_memory::bitmap::BitmapSlice;
use vm_memory::{GuestMemory, Permissions, VolatileSlice};

use super::request::Segment;

/// At most this many iovecs per system call (Linux's UIO_MAXIOV).
const IOV_MAX: usize = 1024;

#[derive(Clone, Copy)]
enum Dir {
    /// Image to guest memory.
    Read,
    /// Guest memory to image.
    Write,
}

/// Reads the image from byte `offset` into `segs`, filling them entirely.
pub fn read_to_guest<M: GuestMemory + ?Sized>(
    file: &File,
    offset: u64,
    mem: &M,
    segs: &[Segment],
) -> io::Result<()> {
    transfer(file, offset, mem, segs, Dir::Read)
}

/// Writes all of `segs` to the image from byte `offset`.
pub fn write_from_guest<M: GuestMemory + ?Sized>(
    file: &File,
    offset: u64,
    mem: &M,
    segs: &[Segment],
) -> io::Result<()> {
    transfer(file, offset, mem, segs, Dir::Write)
}

fn transfer<M: GuestMemory + ?Sized>(
    file: &File,
    offset: u64,
    mem: &M,
    segs: &[Segment],
    dir: Dir,
) -> io::Result<()> {
    let access = match dir {
        Dir::Read => Permissions::Write,
        Dir::Write => Permissions::Read,
    };
    let mut slices = Vec::with_capacity(segs.len());
    for seg in segs {
        for slice in mem
            .get_slices(seg.addr, seg.len as usize, access)
            .map_err(io::Error::other)?
        {
            slices.push(slice.map_err(io::Error::other)?);
        }
    }
    // The guards keep each slice's mapping in place until the iovecs are
    // used (a no-op for mmap'ed memory, needed for Xen grant mappings).
    let guards: Vec<_> = slices.iter().map(|s| s.ptr_guard_mut()).collect();
    let mut iovecs: Vec<libc::iovec> = guards
        .iter()
        .map(|g| libc::iovec {
            iov_base: g.as_ptr().cast(),
            iov_len: g.len(),
        })
        .collect();
    transfer_iovecs(file, offset, &mut iovecs, dir)?;
    if let Dir::Read = dir {
        mark_dirty(&slices);
    }
    Ok(())
}

fn mark_dirty<B: BitmapSlice>(slices: &[VolatileSlice<'_, B>]) {
    for s in slices {
        s.bitmap().mark_dirty(0, s.len());
    }
}

/// Loops until every iovec is done; a transfer of 0 bytes (the file shrank
/// under us) is an error rather than a spin.
fn transfer_iovecs(
    file: &File,
    mut offset: u64,
    mut iovecs: &mut [libc::iovec],
    dir: Dir,
) -> io::Result<()> {
    while !iovecs.is_empty() {
        let count = iovecs.len().min(IOV_MAX);
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let n = match dir {
            // SAFETY: the fd is open for the duration of the call; every
            // iovec describes guest memory that its VolatileSlice guard keeps
            // mapped and writable for iov_len bytes, and no Rust reference
            // to that memory exists (the guest may change it concurrently).
            Dir::Read => unsafe {
                libc::preadv(file.as_raw_fd(), iovecs.as_ptr(), count as i32, off)
            },
            // SAFETY: as above; pwritev only reads the iovecs' memory.
            Dir::Write => unsafe {
                libc::pwritev(file.as_raw_fd(), iovecs.as_ptr(), count as i32, off)
            },
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        offset += n as u64;
        iovecs = advance(iovecs, n as usize);
    }
    Ok(())
}

/// Drops the first `n` bytes from `iovecs`.
fn advance(iovecs: &mut [libc::iovec], mut n: usize) -> &mut [libc::iovec] {
    let mut first = 0;
    while first < iovecs.len() && n >= iovecs[first].iov_len {
        n -= iovecs[first].iov_len;
        first += 1;
    }
    let rest = &mut iovecs[first..];
    if let Some(iov) = rest.first_mut() {
        // n < iov_len: stays inside the same buffer.
        iov.iov_base = iov.iov_base.wrapping_byte_add(n);
        iov.iov_len -= n;
    }
    rest
}
