//! Well-formed requests: read, write, flush, get-id, discard, write-zeroes,
//! read-only refusal, ranges, config space.

use super::*;
use crate::block::config::{config_space, device_features, read_config, CONFIG_SIZE};
use crate::block::disk::SERIAL_LEN;

#[test]
fn read_fills_every_data_descriptor() {
    let rig = Rig::new(8 * 512, false);
    let used = rig.run(&[
        rig.header(VIRTIO_BLK_T_IN, 1),
        desc(DATA, 512, true),
        desc(DATA + 0x1000, 1024, true),
        status_desc(),
    ]);
    assert_eq!((used.count, used.status, used.len), (1, OK, 1536 + 1));
    assert_eq!(rig.guest_bytes(DATA, 512), rig.image_bytes(512, 512));
    assert_eq!(
        rig.guest_bytes(DATA + 0x1000, 1024),
        rig.image_bytes(1024, 1024)
    );
}

#[test]
fn write_reaches_the_image() {
    let rig = Rig::new(8 * 512, false);
    rig.mem
        .write_slice(&[0xab; 1024], GuestAddress(DATA))
        .unwrap();
    let used = rig.run(&[
        rig.header(VIRTIO_BLK_T_OUT, 6),
        desc(DATA, 1024, false),
        status_desc(),
    ]);
    assert_eq!((used.status, used.len), (OK, 1));
    assert_eq!(rig.image_bytes(6 * 512, 1024), vec![0xab; 1024]);
    assert_eq!(
        rig.image_bytes(0, 512),
        (0..512).map(pattern).collect::<Vec<_>>()
    );
}

#[test]
fn header_and_status_may_share_descriptors_with_data() {
    // virtio 1.x: no layout is assumed. Header + data in one descriptor,
    // data + status in another.
    let rig = Rig::new(8 * 512, false);
    rig.header(VIRTIO_BLK_T_IN, 2);
    let used = rig.run(&[desc(HDR, 16, false), desc(STATUS - 512, 513, true)]);
    assert_eq!((used.status, used.len), (OK, 513));
    assert_eq!(
        rig.guest_bytes(STATUS - 512, 512),
        rig.image_bytes(1024, 512)
    );

    rig.mem
        .write_slice(&[7; 512], GuestAddress(HDR + 16))
        .unwrap();
    rig.header(VIRTIO_BLK_T_OUT, 3);
    let used = rig.run(&[
        desc(HDR, 8, false),
        desc(HDR + 8, 8 + 512, false),
        status_desc(),
    ]);
    assert_eq!(used.status, OK);
    assert_eq!(rig.image_bytes(3 * 512, 512), vec![7; 512]);
}

#[test]
fn flush_and_get_id() {
    let rig = Rig::with_serial(4096, false, Some("cordon-serial"));
    let used = rig.run(&[rig.header(VIRTIO_BLK_T_FLUSH, 0), status_desc()]);
    assert_eq!((used.status, used.len), (OK, 1));

    let used = rig.run(&[
        rig.header(VIRTIO_BLK_T_GET_ID, 0),
        desc(DATA, 20, true),
        status_desc(),
    ]);
    assert_eq!((used.status, used.len), (OK, 21));
    let mut want = b"cordon-serial".to_vec();
    want.resize(SERIAL_LEN, 0);
    assert_eq!(rig.guest_bytes(DATA, 20), want);
}

#[test]
fn default_serial_names_device_and_inode() {
    use std::os::unix::fs::MetadataExt;
    let rig = Rig::new(4096, true);
    let meta = rig.image.as_file().metadata().unwrap();
    let want = format!("{:x}-{:x}", meta.dev(), meta.ino());
    let got = rig.disk.serial();
    assert_eq!(
        &got[..want.len().min(SERIAL_LEN)],
        &want.as_bytes()[..want.len().min(SERIAL_LEN)]
    );
    assert!(Disk::new(
        rig.image.as_file().try_clone().unwrap(),
        true,
        Some(&"x".repeat(21))
    )
    .is_err());
}

#[test]
fn read_only_refuses_writes_and_says_so() {
    let rig = Rig::new(8 * 512, true);
    let f = device_features(&rig.disk);
    assert_ne!(f & 1 << VIRTIO_BLK_F_RO, 0);
    assert_eq!(
        f & (1 << VIRTIO_BLK_F_FLUSH | 1 << VIRTIO_BLK_F_DISCARD | 1 << VIRTIO_BLK_F_WRITE_ZEROES),
        0
    );
    rig.mem
        .write_slice(&[0xab; 512], GuestAddress(DATA))
        .unwrap();
    for t in [
        VIRTIO_BLK_T_OUT,
        VIRTIO_BLK_T_DISCARD,
        VIRTIO_BLK_T_WRITE_ZEROES,
    ] {
        let used = rig.run(&[rig.header(t, 0), desc(DATA, 512, false), status_desc()]);
        assert_eq!(used.status, IOERR, "type {t}");
    }
    assert_eq!(
        rig.image_bytes(0, 512),
        (0..512).map(pattern).collect::<Vec<_>>()
    );
    rig.assert_reads_sector_0();
}

#[test]
fn sector_ranges_are_checked() {
    // 4 sectors and a 100-byte tail nobody can address.
    let rig = Rig::new(4 * 512 + 100, false);
    assert_eq!(rig.disk.sectors(), 4);
    let cases = [(3, 1024), (4, 512), (u64::MAX, 512), (u64::MAX / 512, 1024)];
    for (sector, len) in cases {
        for t in [VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT] {
            let used = rig.run(&[
                rig.header(t, sector),
                desc(DATA, len, t == VIRTIO_BLK_T_IN),
                status_desc(),
            ]);
            assert_eq!(used.status, IOERR, "type {t} sector {sector} len {len}");
        }
    }
    let used = rig.run(&[
        rig.header(VIRTIO_BLK_T_IN, 3),
        desc(DATA, 512, true),
        status_desc(),
    ]);
    assert_eq!(used.status, OK);
    // Data must be whole sectors.
    let used = rig.run(&[
        rig.header(VIRTIO_BLK_T_IN, 0),
        desc(DATA, 100, true),
        status_desc(),
    ]);
    assert_eq!(used.status, IOERR);
    assert_eq!(
        rig.image_bytes(4 * 512, 100),
        (2048..2148).map(pattern).collect::<Vec<_>>()
    );
}

/// One virtio_blk_discard_write_zeroes segment at DATA.
fn segment(rig: &Rig, sector: u64, sectors: u32, flags: u32) -> RawDescriptor {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&sector.to_le_bytes());
    s[8..12].copy_from_slice(&sectors.to_le_bytes());
    s[12..].copy_from_slice(&flags.to_le_bytes());
    rig.mem.write_slice(&s, GuestAddress(DATA)).unwrap();
    desc(DATA, 16, false)
}

#[test]
fn write_zeroes_and_discard() {
    let rig = Rig::new(64 * 512, false);
    assert_ne!(
        device_features(&rig.disk) & 1 << VIRTIO_BLK_F_WRITE_ZEROES,
        0
    );
    let seg = segment(&rig, 2, 3, 0);
    let used = rig.run(&[rig.header(VIRTIO_BLK_T_WRITE_ZEROES, 0), seg, status_desc()]);
    assert_eq!(used.status, OK);
    assert_eq!(rig.image_bytes(2 * 512, 3 * 512), vec![0; 3 * 512]);
    assert_eq!(rig.image_bytes(5 * 512, 1), vec![pattern(5 * 512)]);

    let seg = segment(&rig, 62, 3, 0);
    let used = rig.run(&[rig.header(VIRTIO_BLK_T_WRITE_ZEROES, 0), seg, status_desc()]);
    assert_eq!(used.status, IOERR);
    let seg = segment(&rig, 0, 1, 2);
    let used = rig.run(&[rig.header(VIRTIO_BLK_T_WRITE_ZEROES, 0), seg, status_desc()]);
    assert_eq!(used.status, UNSUPP);

    let discard = device_features(&rig.disk) & 1 << VIRTIO_BLK_F_DISCARD != 0;
    assert_eq!(discard, rig.disk.can_discard());
    let seg = segment(&rig, 8, 16, 0);
    let used = rig.run(&[rig.header(VIRTIO_BLK_T_DISCARD, 0), seg, status_desc()]);
    if discard {
        assert_eq!(used.status, OK);
        assert_eq!(rig.image_bytes(8 * 512, 16 * 512), vec![0; 16 * 512]);
        assert_eq!(rig.image_bytes(24 * 512, 1), vec![pattern(24 * 512)]);
        let seg = segment(&rig, 8, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
        let used = rig.run(&[rig.header(VIRTIO_BLK_T_DISCARD, 0), seg, status_desc()]);
        assert_eq!(used.status, UNSUPP);
    } else {
        assert_eq!(used.status, UNSUPP);
    }
}

#[test]
fn unknown_types_are_unsupported() {
    let rig = Rig::new(4096, false);
    for t in [
        VIRTIO_BLK_T_SCSI_CMD,
        VIRTIO_BLK_T_SECURE_ERASE,
        VIRTIO_BLK_T_ZONE_REPORT,
        0xdead,
    ] {
        let used = rig.run(&[rig.header(t, 0), status_desc()]);
        assert_eq!((used.status, used.len), (UNSUPP, 1), "type {t}");
    }
}

#[test]
fn config_space_reports_capacity_and_checks_ranges() {
    let rig = Rig::new(10 * 512 + 3, false);
    let space = config_space(&rig.disk);
    assert_eq!(read_config(&space, 0, 8), 10u64.to_le_bytes());
    assert_eq!(read_config(&space, 20, 4), 512u32.to_le_bytes());
    assert_eq!(
        read_config(&space, 0, CONFIG_SIZE as u32).len(),
        CONFIG_SIZE
    );
    assert!(read_config(&space, 1, CONFIG_SIZE as u32).is_empty());
    assert!(read_config(&space, u32::MAX, 2).is_empty());
    assert!(read_config(&space, 8, u32::MAX).is_empty());
}
