//! What the device offers: virtio feature bits and the virtio_blk_config
//! space, built once from the disk and read through GET_CONFIG.

use std::mem::{offset_of, size_of};

use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;

use super::disk::Disk;

/// Largest queue the backend accepts.
pub const QUEUE_SIZE: u16 = crate::serve::MAX_QUEUE_SIZE as u16;
/// Data segments per request (config `seg_max`): the smallest ring a
/// frontend offers (256) minus the header and status descriptors.
pub const SEG_MAX: u32 = 254;
/// Per DISCARD or WRITE_ZEROES segment: 1 GiB and 64 MiB. WRITE_ZEROES may
/// fall back to writing zero buffers, so it gets the smaller bound.
pub const MAX_DISCARD_SECTORS: u32 = 1 << 21;
pub const MAX_WRITE_ZEROES_SECTORS: u32 = 1 << 17;
/// Segments (struct virtio_blk_discard_write_zeroes) per request.
pub const MAX_DISCARD_SEG: u32 = 32;
/// Discard granularity hint: 8 sectors, one 4 KiB page or block.
pub const DISCARD_ALIGNMENT: u32 = 8;

/// The whole config space: struct virtio_blk_config as the kernel headers
/// of virtio-bindings 0.2 define it. Fields for features not offered read
/// as zero, so a frontend may ask for any prefix of it.
pub const CONFIG_SIZE: usize = size_of::<virtio_blk_config>();

/// Feature bits offered for `disk`.
pub fn device_features(disk: &Disk) -> u64 {
    let mut f = crate::serve::COMMON_FEATURES
        | 1 << VIRTIO_RING_F_INDIRECT_DESC
        | 1 << VIRTIO_BLK_F_SEG_MAX
        | 1 << VIRTIO_BLK_F_BLK_SIZE;
    if disk.read_only() {
        f |= 1 << VIRTIO_BLK_F_RO;
    } else {
        f |= 1 << VIRTIO_BLK_F_FLUSH | 1 << VIRTIO_BLK_F_WRITE_ZEROES;
        if disk.can_discard() {
            f |= 1 << VIRTIO_BLK_F_DISCARD;
        }
    }
    f
}

/// The config space for `disk`, little-endian as virtio 1.x requires.
pub fn config_space(disk: &Disk) -> [u8; CONFIG_SIZE] {
    type C = virtio_blk_config;
    let mut c = [0u8; CONFIG_SIZE];
    let mut put = |off: usize, bytes: &[u8]| c[off..off + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(C, capacity), &disk.sectors().to_le_bytes());
    put(offset_of!(C, seg_max), &SEG_MAX.to_le_bytes());
    put(
        offset_of!(C, blk_size),
        &(super::disk::SECTOR_SIZE as u32).to_le_bytes(),
    );
    put(offset_of!(C, num_queues), &1u16.to_le_bytes());
    if disk.can_discard() {
        put(
            offset_of!(C, max_discard_sectors),
            &MAX_DISCARD_SECTORS.to_le_bytes(),
        );
        put(
            offset_of!(C, max_discard_seg),
            &MAX_DISCARD_SEG.to_le_bytes(),
        );
        put(
            offset_of!(C, discard_sector_alignment),
            &DISCARD_ALIGNMENT.to_le_bytes(),
        );
    }
    if !disk.read_only() {
        put(
            offset_of!(C, max_write_zeroes_sectors),
            &MAX_WRITE_ZEROES_SECTORS.to_le_bytes(),
        );
        put(
            offset_of!(C, max_write_zeroes_seg),
            &MAX_DISCARD_SEG.to_le_bytes(),
        );
        put(
            offset_of!(C, write_zeroes_may_unmap),
            &[u8::from(disk.can_discard())],
        );
    }
    c
}

pub use crate::serve::read_config;
