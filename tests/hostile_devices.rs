//! Guests that attack the virtio devices: each attack ends only the request
//! (the backend answers with an error status or ignores it, logs it at a
//! bounded rate and keeps serving), the vm process and the device process
//! stay up, and the image on the host is intact.

mod common;

use std::path::PathBuf;

use common::{guest, run};

fn image(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-hostile-dev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, data).expect("write image");
    path
}

/// Runs `name` against a disk, rng or console; asserts the guest finished
/// its attack and a valid request afterwards, and nothing died.
fn attack(name: &str, device: &str) -> common::Run {
    let img = image(&format!("{name}-{device}.img"));
    let before = std::fs::read(&img).unwrap();
    let disk = format!("{}", img.display());
    let mut args: Vec<&str> = match device {
        "blk" => vec!["--disk", &disk],
        "blk-ro" => vec!["--disk", &disk],
        "rng" => vec!["--rng"],
        _ => vec!["--console"],
    };
    let ro = format!("{disk},ro");
    if device == "blk-ro" {
        args[1] = &ro;
    }
    let path = guest(name);
    args.push(path.to_str().unwrap());
    let r = run(&args);
    assert_eq!(
        r.code, 0,
        "{name} on {device}: exit code\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout.contains(&format!("{name}: done, not stopped")),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("stopped early"),
        "{name} on {device}: the device stopped serving:\n{}",
        r.stdout
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(!r.stderr.contains("device process died"), "{}", r.stderr);
    // Every device process exited on its own when the vm process did.
    for line in r
        .stderr
        .lines()
        .filter(|l| l.contains("device process (pid"))
    {
        assert!(line.ends_with("exited with status 0"), "{line}");
    }
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "{name} on {device}: the image changed"
    );
    r
}

#[test]
fn descriptor_loops() {
    attack("virtq-desc-loop", "blk");
    attack("virtq-desc-loop", "rng");
}

#[test]
fn addresses_outside_guest_ram() {
    let r = attack("virtq-oob-addr", "blk");
    assert!(r.stdout.contains("IOERR"), "{}", r.stdout);
    attack("virtq-oob-addr", "rng");
}

#[test]
fn chains_longer_than_the_queue() {
    attack("virtq-long-chain", "blk");
    attack("virtq-long-chain", "rng");
}

#[test]
fn bad_queue_sizes() {
    let r = attack("virtq-bad-size", "blk");
    assert!(
        r.stderr.contains("block0"),
        "the transport logged the refusal: {}",
        r.stderr
    );
}

#[test]
fn notify_before_driver_ok() {
    attack("virtq-notify-early", "blk");
    attack("virtq-notify-early", "console");
}

#[test]
fn config_access_out_of_range() {
    let r = attack("virtq-config-oob", "blk");
    assert!(
        r.stdout
            .contains("over capacity: 0x800 before, 0x800 after (unchanged)"),
        "{}",
        r.stdout
    );
    attack("virtq-config-oob", "console");
}

#[test]
fn features_never_offered() {
    let r = attack("virtq-bad-features", "blk");
    assert!(r.stdout.contains("FEATURES_OK cleared"), "{}", r.stdout);
}

#[test]
fn writing_to_a_read_only_disk() {
    let r = attack("blk-write-ro", "blk-ro");
    assert!(r.stdout.contains("IOERR"), "{}", r.stdout);
}
