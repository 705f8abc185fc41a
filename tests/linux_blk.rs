//! Interop: QEMU as the vhost-user frontend drives a vhost-user-blk backend
//! while Debian's kernel (virtio-mmio on QEMU's microvm, software emulation)
//! reads and writes the whole disk. Data is checked both ways: the guest
//! compares the disk with the host's pattern, writes its own and reads it
//! back; the host then finds the guest's pattern in the image.
//!
//! The backend is cordon's `cordon device block`, and qemu-storage-daemon's
//! export as a control that shows the harness and guest side are right.

mod emulated;

use emulated::disk::{Pattern, SECTOR};
use emulated::{Group, Initramfs, Kernel, Machine, Outcome, Scratch, VIRTIO_BLK};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// 16 MiB: 32768 sectors.
const DISK_BYTES: usize = 16 << 20;

/// The guest's side. `cmp` names the first differing byte on a mismatch;
/// `conv=fsync` makes the kernel send a flush; dropping the page cache makes
/// the read-back come from the device.
const GUEST_SCRIPT: &str = r#"
i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1)); [ $i -le 100 ] || { mark no-disk; exit 1; }; sleep 0.05
done
mark sectors "$(cat /sys/block/vda/size)"
if cmp /dev/vda /host.pat; then mark host-data ok; else mark host-data bad; exit 1; fi
dd if=/guest.pat of=/dev/vda bs=1M conv=fsync 2>/dev/null
mark written "$(cut -d' ' -f1 /proc/uptime)"
echo 3 > /proc/sys/vm/drop_caches
if cmp /dev/vda /guest.pat; then mark readback ok; else mark readback bad; exit 1; fi
"#;

#[test]
fn linux_uses_cordon_block_backend_through_qemu() {
    check_both_ways("linux-blk-cordon", |socket, image| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cordon"));
        cmd.arg("device").arg("block").arg("--socket").arg(socket);
        cmd.arg("--image").arg(image);
        cmd
    });
}

#[test]
fn linux_uses_qemu_storage_daemon_through_qemu() {
    check_both_ways("linux-blk-qsd", |socket, image| {
        let mut cmd = Command::new("qemu-storage-daemon");
        cmd.arg("--blockdev").arg(format!(
            "driver=file,node-name=f,filename={}",
            image.display()
        ));
        cmd.arg("--export").arg(format!(
            "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path={},writable=on",
            socket.display()
        ));
        cmd
    });
}

/// Writes the host's pattern into a fresh image, serves it with `backend`,
/// boots the guest against it and checks the guest's pattern in the image.
fn check_both_ways(name: &str, backend: impl Fn(&Path, &Path) -> Command) {
    let kernel = Kernel::debian_amd64();
    let scratch = Scratch::new(name);
    let image = scratch.path("disk.img");
    let socket = scratch.path("blk.sock");
    let backend_log = scratch.path("backend.log");
    std::fs::write(&image, Pattern::Host.bytes(DISK_BYTES)).expect("image");

    let mut initramfs = Initramfs::new(&kernel, &scratch.path("initrd")).expect("initramfs");
    initramfs.modules(VIRTIO_BLK).expect("modules");
    initramfs
        .file("/host.pat", 0o644, &Pattern::Host.bytes(DISK_BYTES))
        .and_then(|i| i.file("/guest.pat", 0o644, &Pattern::Guest.bytes(DISK_BYTES)))
        .expect("patterns");
    let initrd = initramfs.finish(GUEST_SCRIPT).expect("initramfs");

    let log = File::create(&backend_log).expect("backend log");
    let mut cmd = backend(&socket, &image);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("backend log"))
        .stderr(log);
    let mut server = Group::spawn(name, &mut cmd).expect("backend");
    if let Err(e) = server.wait_for_path(&socket, Duration::from_secs(10)) {
        panic!("{e}; its output:\n{}", read_log(&backend_log));
    }

    let outcome = Machine::microvm(&kernel, &initrd)
        .args([
            "-chardev",
            &format!("socket,id=blk0,path={}", socket.display()),
        ])
        .args([
            "-device",
            "vhost-user-blk,chardev=blk0,num-queues=1,queue-size=256",
        ])
        .timeout(Duration::from_secs(45))
        .run();
    let still_serving = server.try_wait().expect("try_wait").is_none();
    let backend_output = read_log(&backend_log);
    drop(server);
    let context = || format!("{}--- backend\n{backend_output}", outcome.report());

    assert!(still_serving, "the backend died\n{}", context());
    check_guest(&outcome, &context);
    let data = std::fs::read(&image).expect("image");
    assert_eq!(data.len(), DISK_BYTES, "image size changed\n{}", context());
    if let Some(why) = Pattern::Guest.first_mismatch(&data) {
        panic!("the guest's data is not in the image: {why}\n{}", context());
    }
    let init = outcome.mark("init").map_or(Duration::ZERO, |m| m.at);
    println!(
        "{name}: /init after {init:.2?} (guest uptime {} s), whole run {:.2?}",
        outcome.expect_mark("init"),
        outcome.elapsed
    );
}

fn check_guest(outcome: &Outcome, context: &dyn Fn() -> String) {
    let sectors = (DISK_BYTES as u64 / SECTOR).to_string();
    for (mark, want) in [
        ("sectors", sectors.as_str()),
        ("host-data", "ok"),
        ("readback", "ok"),
        ("exit", "0"),
    ] {
        let got = outcome.mark(mark).map(|m| m.value.as_str());
        assert_eq!(got, Some(want), "mark {mark}\n{}", context());
    }
    assert!(
        outcome.status.is_some_and(|s| s.success()),
        "QEMU did not exit cleanly\n{}",
        context()
    );
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}
