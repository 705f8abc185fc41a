//! The disk patterns and checksum of guest-images/blkcheck (its crate docs
//! define them), so a host test writes what the guest checks and checks
//! what the guest wrote, whether the guest is blkcheck or a Linux /init.
//!
//! - host pattern: sector N (512 bytes) starts with the little-endian u64
//!   `N ^ HOST_MAGIC`; its other 504 bytes are zero.
//! - guest pattern: the little-endian u64 at byte offset `off` (every
//!   multiple of 8) is `off ^ GUEST_MAGIC`.
//! - checksum: FNV-1a over the little-endian u64 words in order.

/// Sector size of virtio-blk.
pub const SECTOR: u64 = 512;

pub const HOST_MAGIC: u64 = u64::from_le_bytes(*b"HOSTDISK");
pub const GUEST_MAGIC: u64 = u64::from_le_bytes(*b"GUESTPAT");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Written by the host before boot.
    Host,
    /// Written by the guest.
    Guest,
}

impl Pattern {
    /// The u64 at byte offset `off` of the disk (a multiple of 8).
    pub fn word(self, off: u64) -> u64 {
        match self {
            Pattern::Host if off.is_multiple_of(SECTOR) => (off / SECTOR) ^ HOST_MAGIC,
            Pattern::Host => 0,
            Pattern::Guest => off ^ GUEST_MAGIC,
        }
    }

    /// The first `len` bytes (whole words) of the pattern.
    pub fn bytes(self, len: usize) -> Vec<u8> {
        assert!(len.is_multiple_of(8), "{len} bytes is not whole words");
        (0..len as u64)
            .step_by(8)
            .flat_map(|off| self.word(off).to_le_bytes())
            .collect()
    }

    /// Where `disk` first departs from the pattern, with what it holds there
    /// (and whose word that is, if it is one); None if it matches throughout.
    pub fn first_mismatch(self, disk: &[u8]) -> Option<String> {
        if !disk.len().is_multiple_of(8) {
            return Some(format!("length {} is not whole words", disk.len()));
        }
        let (off, got) = disk
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .zip((0..).step_by(8))
            .map(|(got, off)| (off, got))
            .find(|&(off, got)| got != self.word(off))?;
        let whose = [Pattern::Host, Pattern::Guest]
            .into_iter()
            .find(|p| p.word(off) == got)
            .map_or("neither pattern's".to_owned(), |p| {
                format!("{p:?} pattern's")
            });
        Some(format!(
            "the word at byte {off} (sector {}) is {got:#018x} ({whose}), expected {:#018x}",
            off / SECTOR,
            self.word(off)
        ))
    }
}

/// blkcheck's checksum: FNV-1a over little-endian u64 words.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0xcbf2_9ce4_8422_2325, |h, w| {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        (h ^ w).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_blkcheck() {
        let host = Pattern::Host.bytes(2 * SECTOR as usize);
        assert_eq!(host[..8], HOST_MAGIC.to_le_bytes());
        assert_eq!(host[8..16], [0; 8]);
        assert_eq!(host[512..520], (1 ^ HOST_MAGIC).to_le_bytes());
        assert_eq!(Pattern::Host.first_mismatch(&host), None);
        let guest = Pattern::Guest.bytes(2 * SECTOR as usize);
        assert_eq!(guest[8..16], (8 ^ GUEST_MAGIC).to_le_bytes());
        let why = Pattern::Host.first_mismatch(&guest).unwrap();
        assert!(why.starts_with("the word at byte 0 (sector 0)"), "{why}");
        assert!(why.contains("Guest pattern's"), "{why}");
        assert_ne!(checksum(&host), checksum(&guest));
    }
}
