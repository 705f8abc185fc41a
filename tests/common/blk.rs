//! The disk patterns of the blkcheck guest (guest-images/blkcheck): the
//! host writes one before boot, the guest writes the other.

use std::path::Path;

const SECTOR: usize = 512;
const HOST_MAGIC: u64 = u64::from_le_bytes(*b"HOSTDISK");
const GUEST_MAGIC: u64 = u64::from_le_bytes(*b"GUESTPAT");

/// An image of `bytes` carrying blkcheck's host pattern: sector N starts
/// with N ^ HOST_MAGIC (little-endian), the rest zero.
pub fn host_pattern_image(path: &Path, bytes: usize) {
    let mut data = vec![0u8; bytes];
    for (n, sector) in data.chunks_mut(SECTOR).enumerate() {
        sector[..8].copy_from_slice(&(n as u64 ^ HOST_MAGIC).to_le_bytes());
    }
    std::fs::write(path, data).expect("write image");
}

/// Whether the whole file holds blkcheck's guest pattern.
pub fn has_guest_pattern(path: &Path) -> bool {
    let data = std::fs::read(path).expect("read image");
    data.chunks(8)
        .enumerate()
        .all(|(i, w)| w == ((i as u64 * 8) ^ GUEST_MAGIC).to_le_bytes())
}
