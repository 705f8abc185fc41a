//! virtio-blk requests (virtio 1.2, 5.2.6) without any device: request
//! types, statuses, feature bits, the 16-byte header and how a transfer is
//! split into requests. Pure, so unit-tested on the host.

/// The protocol's sector: requests address 512-byte units whatever the
/// disk's block size.
pub const SECTOR_SIZE: u64 = 512;

pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;

pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;

pub const F_SIZE_MAX: u64 = 1 << 1;
pub const F_SEG_MAX: u64 = 1 << 2;
pub const F_RO: u64 = 1 << 5;
pub const F_BLK_SIZE: u64 = 1 << 6;
pub const F_FLUSH: u64 = 1 << 9;

/// Bytes of a GET_ID answer.
pub const ID_BYTES: usize = 20;

/// Config-space offsets (`struct virtio_blk_config`).
pub mod config {
    pub const CAPACITY: u64 = 0;
    pub const SIZE_MAX: u64 = 8;
    pub const SEG_MAX: u64 = 12;
    pub const BLK_SIZE: u64 = 20;
}

/// Largest data transfer of one request: large enough that a whole-disk
/// pass is a few hundred requests, small enough to keep several in flight.
pub const MAX_REQUEST_BYTES: u32 = 1 << 20;
/// Most data segments one request uses.
pub const MAX_SEGMENTS: u32 = 64;

/// The request header: type, reserved, sector, little-endian.
pub fn header(kind: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&kind.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    h
}

/// A status byte's name.
pub fn status_name(status: u8) -> &'static str {
    match status {
        S_OK => "OK",
        S_IOERR => "IOERR",
        S_UNSUPP => "UNSUPP",
        _ => "unknown",
    }
}

/// How data is cut into requests and segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most data bytes in one request (a multiple of `SECTOR_SIZE`).
    pub request: u32,
    /// Most bytes in one data segment.
    pub segment: u32,
}

impl Limits {
    /// Limits from the negotiated size_max and seg_max (`None` when not
    /// negotiated; a seg_max of 0 counts as 1) and the queue size (a request takes data segments plus
    /// a header and a status descriptor).
    pub fn new(size_max: Option<u32>, seg_max: Option<u32>, queue_size: u16) -> Limits {
        // A size_max of 0 means no limit, as Linux reads it (QEMU's
        // vhost-user-blk export offers SIZE_MAX with 0).
        let segment = match size_max {
            None | Some(0) => MAX_REQUEST_BYTES,
            Some(s) => s.clamp(SECTOR_SIZE as u32, MAX_REQUEST_BYTES),
        };
        let by_queue = u32::from(queue_size).saturating_sub(2).max(1);
        let segments = seg_max
            .unwrap_or(MAX_SEGMENTS)
            .clamp(1, MAX_SEGMENTS)
            .min(by_queue);
        let request = segment.saturating_mul(segments).min(MAX_REQUEST_BYTES);
        let request = (request / SECTOR_SIZE as u32 * SECTOR_SIZE as u32).max(SECTOR_SIZE as u32);
        Limits { request, segment }
    }

    /// Data segments a request of `len` bytes needs.
    pub fn segments(&self, len: u32) -> u32 {
        len.div_ceil(self.segment).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_little_endian() {
        let h = header(T_OUT, 0x0102_0304_0506_0708);
        assert_eq!(h, [1, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(header(T_GET_ID, 0)[0], 8);
    }

    #[test]
    fn limits_follow_the_device() {
        let none = Limits::new(None, None, 256);
        assert_eq!(
            none,
            Limits {
                request: 1 << 20,
                segment: 1 << 20
            }
        );
        assert_eq!(none.segments(1 << 20), 1);
        let small = Limits::new(Some(4096), Some(126), 256);
        assert_eq!(small.request, 64 * 4096);
        assert_eq!(small.segments(64 * 4096), 64);
        assert_eq!(small.segments(4097), 2);
        let tiny_queue = Limits::new(Some(4096), None, 4);
        assert_eq!(tiny_queue.request, 2 * 4096);
        let odd = Limits::new(Some(1000), Some(3), 256);
        assert_eq!(odd.request, 2560, "rounded down to whole sectors");
        assert!(odd.segments(odd.request) <= 3);
        let qsd = Limits::new(Some(0), Some(126), 256);
        assert_eq!(qsd.request, 1 << 20, "size_max 0 is no limit");
        let silly = Limits::new(Some(1), Some(0), 1);
        assert_eq!(
            silly,
            Limits {
                request: 512,
                segment: 512
            }
        );
    }
}
