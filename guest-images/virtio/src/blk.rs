//! virtio-blk driver: read, write, flush and get-id on one request queue,
//! with large transfers split into requests that are all published with one
//! notify and reaped as they complete.

use core::fmt;
use core::ptr;

use crate::blk_proto::{
    self as proto, config, header, Limits, SECTOR_SIZE, S_OK, T_FLUSH, T_GET_ID, T_IN, T_OUT,
};
use crate::clock::Deadline;
use crate::queue::{Segment, Virtqueue};
use crate::ring::MAX_QUEUE_SIZE;
use crate::transport::Transport;
use crate::{dma, Device, VirtioError};

/// Features this driver accepts when offered (besides VERSION_1). All are
/// limits or information it honours; FLUSH makes flush requests meaningful.
const WANTED: u64 =
    proto::F_SIZE_MAX | proto::F_SEG_MAX | proto::F_RO | proto::F_BLK_SIZE | proto::F_FLUSH;
/// Default time a request may take before the device counts as dead.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A failed block operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The transport or queue failed; the device was reset.
    Virtio(VirtioError),
    /// The device answered a request with a status other than OK.
    Status { status: u8, sector: u64 },
    /// The transfer would pass the end of the disk.
    OutOfRange { sector: u64, sectors: u64 },
    /// The buffer is not a whole number of sectors.
    Unaligned { len: usize },
}

impl From<VirtioError> for BlkError {
    fn from(e: VirtioError) -> BlkError {
        BlkError::Virtio(e)
    }
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlkError::Virtio(e) => write!(f, "{e}"),
            BlkError::Status { status, sector } => write!(
                f,
                "status {status} ({}) at sector {sector}",
                proto::status_name(status)
            ),
            BlkError::OutOfRange { sector, sectors } => {
                write!(f, "sectors {sector}+{sectors} pass the end of the disk")
            }
            BlkError::Unaligned { len } => write!(f, "{len} bytes is not whole sectors"),
        }
    }
}

/// A virtio-blk device, ready for requests.
pub struct Block {
    transport: Transport,
    queue: Virtqueue,
    capacity: u64,
    block_size: Option<u32>,
    limits: Limits,
    /// Per descriptor head: a 16-byte header at `reqs + 16 * head`, a
    /// status byte at `reqs + 16 * MAX_QUEUE_SIZE + head`; then the GET_ID
    /// buffer.
    reqs: u64,
    timeout_ms: u64,
}

const STATUS_AT: u64 = 16 * MAX_QUEUE_SIZE as u64;
const ID_AT: u64 = STATUS_AT + MAX_QUEUE_SIZE as u64;

impl Block {
    /// Resets and sets up the block device `device`.
    pub fn new(device: &Device) -> Result<Block, VirtioError> {
        let mut transport = Transport::start(device, WANTED)?;
        let f = transport.features();
        let (capacity, size_max, seg_max, block_size) = transport.config(|c| {
            let opt = |bit, off| (f & bit != 0).then(|| c.read32(off));
            (
                c.read64(config::CAPACITY),
                opt(proto::F_SIZE_MAX, config::SIZE_MAX),
                opt(proto::F_SEG_MAX, config::SEG_MAX),
                opt(proto::F_BLK_SIZE, config::BLK_SIZE),
            )
        });
        let queue = transport.setup_queue(0, MAX_QUEUE_SIZE)?;
        if queue.size() < 3 {
            transport.fail();
            return Err(VirtioError::QueueFull {
                needed: 3,
                free: queue.size(),
            });
        }
        let reqs = dma::alloc_zeroed(ID_AT + proto::ID_BYTES as u64, 16)
            .ok_or(VirtioError::OutOfMemory)?;
        transport.driver_ok()?;
        Ok(Block {
            limits: Limits::new(size_max, seg_max, queue.size()),
            transport,
            queue,
            capacity,
            block_size,
            reqs,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        })
    }

    /// Disk size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the device says the disk is read-only (VIRTIO_BLK_F_RO).
    /// Writes are still sent; the device must fail them.
    pub fn read_only(&self) -> bool {
        self.transport.features() & proto::F_RO != 0
    }

    /// Whether flush requests are negotiated (without, the disk is
    /// write-through and [`Block::flush`] sends nothing).
    pub fn has_flush(&self) -> bool {
        self.transport.features() & proto::F_FLUSH != 0
    }

    /// The block size the device reported, if it did.
    pub fn block_size(&self) -> Option<u32> {
        self.block_size
    }

    /// Features offered and negotiated.
    pub fn features(&self) -> (u64, u64) {
        (self.transport.offered(), self.transport.features())
    }

    /// How transfers are split.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Caps the data bytes of one request at `bytes` (rounded down to whole
    /// sectors, at least one): for benchmarks of a given request size.
    pub fn set_max_request(&mut self, bytes: u32) {
        let sectors = (bytes / proto::SECTOR_SIZE as u32).max(1);
        self.limits.request = self.limits.request.min(sectors * proto::SECTOR_SIZE as u32);
    }

    /// Descriptors in the request queue.
    pub fn queue_size(&self) -> u16 {
        self.queue.size()
    }

    /// How long one request may take before the device counts as dead.
    pub fn set_timeout_ms(&mut self, ms: u64) {
        self.timeout_ms = ms;
    }

    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.transfer(T_IN, sector, buf.as_mut_ptr() as u64, buf.len())
    }

    /// Writes `buf` (whole sectors) from `sector` on.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.transfer(T_OUT, sector, buf.as_ptr() as u64, buf.len())
    }

    /// Asks the device to make every completed write durable. `Ok(false)`:
    /// FLUSH was not negotiated, so there was nothing to ask.
    pub fn flush(&mut self) -> Result<bool, BlkError> {
        if !self.has_flush() {
            return Ok(false);
        }
        self.run_one(T_FLUSH, None)?;
        Ok(true)
    }

    /// The device's serial (GET_ID: up to 20 bytes, NUL-padded).
    pub fn get_id(&mut self) -> Result<[u8; proto::ID_BYTES], BlkError> {
        let id = self.reqs + ID_AT;
        self.write_bytes(id, [0u8; proto::ID_BYTES]);
        self.run_one(T_GET_ID, Some((id, proto::ID_BYTES as u32)))?;
        // SAFETY: the GET_ID buffer is in this driver's arena memory and
        // the device finished with it (the request was used).
        Ok(unsafe { ptr::read_volatile(id as *const [u8; proto::ID_BYTES]) })
    }

    /// One request without splitting, waited for.
    fn run_one(&mut self, kind: u32, data: Option<(u64, u32)>) -> Result<(), BlkError> {
        self.transport.usable()?;
        let (addr, len) = data.unwrap_or((0, 0));
        self.submit(kind, 0, addr, len, data.is_some())?;
        self.queue.kick();
        let used = self.wait().inspect_err(|_| self.transport.give_up())?;
        self.status_of(used)
    }

    /// Splits `len` bytes at `addr` into requests, keeps the queue as full
    /// as it goes, and waits for all of them.
    fn transfer(&mut self, kind: u32, sector: u64, addr: u64, len: usize) -> Result<(), BlkError> {
        self.transport.usable()?;
        if !(len as u64).is_multiple_of(SECTOR_SIZE) {
            return Err(BlkError::Unaligned { len });
        }
        let sectors = len as u64 / SECTOR_SIZE;
        if sector
            .checked_add(sectors)
            .is_none_or(|end| end > self.capacity)
        {
            return Err(BlkError::OutOfRange { sector, sectors });
        }
        if !dma::in_ram(addr, len as u64) {
            return Err(VirtioError::NotInRam {
                addr,
                len: len as u64,
            }
            .into());
        }
        let (len, mut done, mut outstanding) = (len as u64, 0u64, 0usize);
        let mut first_error = None;
        loop {
            while done < len && first_error.is_none() {
                let n = (len - done).min(u64::from(self.limits.request)) as u32;
                if u32::from(self.queue.num_free()) < self.limits.segments(n) + 2 {
                    break;
                }
                let at = sector + done / SECTOR_SIZE;
                if let Err(e) = self.submit(kind, at, addr + done, n, kind == T_IN) {
                    if outstanding > 0 {
                        self.transport.give_up();
                    }
                    return Err(e.into());
                }
                done += u64::from(n);
                outstanding += 1;
            }
            self.queue.kick();
            if outstanding == 0 {
                break;
            }
            let mut used = Some(self.wait().inspect_err(|_| self.transport.give_up())?);
            while let Some(u) = used {
                outstanding -= 1;
                if let Err(e) = self.status_of(u) {
                    first_error.get_or_insert(e);
                }
                used = self
                    .queue
                    .pop_used()
                    .inspect_err(|_| self.transport.give_up())?;
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Adds one request (header, data segments, status) to the queue, which
    /// must have room for it.
    fn submit(
        &mut self,
        kind: u32,
        sector: u64,
        data: u64,
        len: u32,
        device_writes: bool,
    ) -> Result<(), VirtioError> {
        let mut segs = [Segment {
            addr: 0,
            len: 0,
            device_writes: false,
        }; proto::MAX_SEGMENTS as usize + 2];
        let free = self.queue.num_free();
        let head = self
            .queue
            .next_head()
            .ok_or(VirtioError::QueueFull { needed: 3, free })?;
        let hdr = self.reqs + 16 * u64::from(head);
        let status = self.reqs + STATUS_AT + u64::from(head);
        self.write_bytes(hdr, header(kind, sector));
        self.write_bytes(status, [0xFFu8]);
        segs[0] = Segment {
            addr: hdr,
            len: 16,
            device_writes: false,
        };
        let mut n = 1;
        let mut off = 0;
        while off < len {
            let piece = (len - off).min(self.limits.segment);
            segs[n] = Segment {
                addr: data + u64::from(off),
                len: piece,
                device_writes,
            };
            n += 1;
            off += piece;
        }
        segs[n] = Segment {
            addr: status,
            len: 1,
            device_writes: true,
        };
        // SAFETY: the header and status live in this driver's arena memory
        // for its whole life; the data buffer is borrowed by the caller of
        // `read`/`write`/`get_id`, which does not return before every
        // request is used or the device is reset (`break_device`).
        let added = unsafe { self.queue.add(&segs[..=n]) }?;
        debug_assert_eq!(added, head);
        Ok(())
    }

    /// The status of the used request `used`.
    fn status_of(&self, used: crate::Used) -> Result<(), BlkError> {
        let at = self.reqs + STATUS_AT + u64::from(used.head);
        // SAFETY: the status byte is in this driver's arena memory and the
        // device has returned the request that pointed at it.
        let status = unsafe { ptr::read_volatile(at as *const u8) };
        if status == S_OK {
            Ok(())
        } else {
            let hdr = self.reqs + 16 * u64::from(used.head);
            // SAFETY: as above, for the request's header.
            let h = unsafe { ptr::read_volatile(hdr as *const [u8; 16]) };
            let sector = u64::from_le_bytes(h[8..].try_into().unwrap_or([0; 8]));
            Err(BlkError::Status { status, sector })
        }
    }

    fn write_bytes<const N: usize>(&self, addr: u64, bytes: [u8; N]) {
        // SAFETY: callers pass addresses inside this driver's arena memory
        // (`reqs`), which no request in flight uses at that moment.
        unsafe { ptr::write_volatile(addr as *mut [u8; N], bytes) }
    }

    fn wait(&mut self) -> Result<crate::Used, VirtioError> {
        self.queue.wait_used(Deadline::after_ms(self.timeout_ms))
    }
}
