//! Devices end to end: guests in `guest-images/` driving cordon's backend
//! processes (and qemu-storage-daemon's) through the vm process's
//! virtio-mmio frontend, against real KVM. Data is checked both ways.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::blk::{has_guest_pattern, host_pattern_image};
use common::{cordon, guest, run, temp_dir, wait_limited, GONE_WITHIN};

fn blkcheck_ok(r: &common::Run) {
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("host pattern ok"), "{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l == "blkcheck: ok"),
        "{}",
        r.stdout
    );
}

#[test]
fn blkcheck_through_cordons_block_backend() {
    let image = temp_dir("own").join("disk.img");
    host_pattern_image(&image, 16 << 20);
    let r = run(&[
        "--disk",
        image.to_str().unwrap(),
        guest("blkcheck").to_str().unwrap(),
    ]);
    blkcheck_ok(&r);
    assert!(
        has_guest_pattern(&image),
        "the guest's writes are in the file"
    );
    assert!(r.stderr.contains("block0 device process"), "{}", r.stderr);
}

#[test]
fn blkcheck_through_qemu_storage_daemon() {
    let dir = temp_dir("qsd");
    let (image, socket) = (dir.join("disk.img"), dir.join("qsd.sock"));
    host_pattern_image(&image, 16 << 20);
    let mut qsd = Command::new("qemu-storage-daemon")
        .arg("--blockdev")
        .arg(format!(
            "driver=file,node-name=f,filename={}",
            image.display()
        ))
        .arg("--export")
        .arg(format!(
            "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path={},writable=on",
            socket.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .expect("qemu-storage-daemon (Debian qemu-system-common) is installed by the test command");
    while !socket.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let spec = format!("block:{}", socket.display());
    let r = run(&["--vhost-user", &spec, guest("blkcheck").to_str().unwrap()]);
    let _ = qsd.kill();
    let _ = qsd.wait();
    blkcheck_ok(&r);
    assert!(
        has_guest_pattern(&image),
        "the guest's writes are in the file"
    );
}

#[test]
fn read_only_disk_refuses_writes_and_stays_intact() {
    let image = temp_dir("ro").join("disk.img");
    host_pattern_image(&image, 1 << 20);
    let before = std::fs::read(&image).unwrap();
    let spec = format!("{},ro", image.display());
    let r = run(&["--disk", &spec, guest("blkcheck").to_str().unwrap()]);
    assert_eq!(r.code, 1, "blkcheck fails to write: {}", r.stdout);
    assert!(r.stdout.contains("read-only true"), "{}", r.stdout);
    assert!(r.stdout.contains("host pattern ok"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(&image).unwrap(),
        before,
        "a read-only image is untouched"
    );
}

#[test]
fn rng_reads_from_its_device_process() {
    let r = run(&["--rng", guest("rng-read").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("rng-read: read 4096 bytes"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("rng device process"), "{}", r.stderr);
}

#[test]
fn console_keeps_stdout_and_stderr_apart_and_takes_stdin() {
    let mut child = cordon()
        .args(["run", "--console"])
        .arg(guest("console-echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"first line\nsecond line\nquit\n")
        .expect("write stdin");
    drop(stdin);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout, "first line\nsecond line\n");
    assert!(stderr.contains("console-echo: started"), "{stderr}");
    assert!(
        stderr.contains("console-echo: quit after 2 lines"),
        "{stderr}"
    );
}

#[test]
fn a_standalone_backend_serves_one_frontend_after_another() {
    let dir = temp_dir("standalone");
    let (image, socket) = (dir.join("disk.img"), dir.join("blk.sock"));
    host_pattern_image(&image, 1 << 20);
    let mut backend = cordon()
        .args(["device", "block", "--socket"])
        .arg(&socket)
        .arg("--image")
        .arg(&image)
        .stderr(Stdio::piped())
        .spawn()
        .expect("cordon device block");
    while !socket.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let spec = format!("block:{}", socket.display());
    let first = run(&["--vhost-user", &spec, guest("blkcheck").to_str().unwrap()]);
    blkcheck_ok(&first);
    // The host pattern is gone now; the second guest only checks its own.
    let second = run(&[
        "--vhost-user",
        &spec,
        guest("blkcheck").to_str().unwrap(),
        "--",
        "no-host-pattern",
    ]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(
        backend.try_wait().expect("try_wait").is_none(),
        "the backend keeps serving"
    );
    let _ = backend.kill();
    let _ = backend.wait();
    assert!(has_guest_pattern(&image));
}
