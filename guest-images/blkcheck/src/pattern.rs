//! The two disk patterns and the checksum (see the crate docs).

/// `b"HOSTDISK"` as a little-endian u64.
pub const HOST_MAGIC: u64 = u64::from_le_bytes(*b"HOSTDISK");
/// `b"GUESTPAT"` as a little-endian u64.
pub const GUEST_MAGIC: u64 = u64::from_le_bytes(*b"GUESTPAT");

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x100_0000_01b3;

#[derive(Clone, Copy)]
pub enum Pattern {
    /// Written by the host before boot.
    Host,
    /// Written by this guest.
    Guest,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Host => "host",
            Pattern::Guest => "guest",
        }
    }

    /// The u64 at byte offset `off` of the disk (a multiple of 8).
    fn word(self, off: u64) -> u64 {
        match self {
            Pattern::Host if off.is_multiple_of(512) => (off / 512) ^ HOST_MAGIC,
            Pattern::Host => 0,
            Pattern::Guest => off ^ GUEST_MAGIC,
        }
    }

    /// Fills `buf`, which sits at byte offset `start` of the disk.
    pub fn fill(self, start: u64, buf: &mut [u8]) {
        for (i, w) in buf.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&self.word(start + 8 * i as u64).to_le_bytes());
        }
    }

    /// The first word of `buf` (at byte offset `start` of the disk) that
    /// differs from the pattern: its offset, value and the expected value.
    pub fn mismatch(self, start: u64, buf: &[u8]) -> Option<(u64, u64, u64)> {
        buf.chunks_exact(8).enumerate().find_map(|(i, w)| {
            let off = start + 8 * i as u64;
            let got = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            let want = self.word(off);
            (got != want).then_some((off, got, want))
        })
    }
}

/// FNV-1a over little-endian u64 words.
pub struct Checksum(u64);

impl Checksum {
    pub fn new() -> Checksum {
        Checksum(FNV_OFFSET)
    }

    /// Adds `bytes` (a multiple of 8 long).
    pub fn add(&mut self, bytes: &[u8]) {
        for w in bytes.chunks_exact(8) {
            let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            self.0 = (self.0 ^ w).wrapping_mul(FNV_PRIME);
        }
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}
