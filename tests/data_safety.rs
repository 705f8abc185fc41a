//! Data safety of the block backend: a flush reaches fdatasync(2) before
//! the guest is told it completed, and bytes a guest flushed survive the
//! backend being killed right after.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::blk::has_guest_pattern;
use common::{alive, cordon, guest, temp_dir, wait_limited, GONE_WITHIN};

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < GONE_WITHIN,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The backend's syscalls, traced with strace: the fdatasync of the guest's
/// flush returns before the next used-buffer notification (an 8-byte write
/// to the call eventfd), and none is sent while it runs (blkcheck has
/// nothing else in flight when it flushes).
#[test]
fn flush_reaches_fdatasync_before_the_guest_is_notified() {
    let dir = temp_dir("strace");
    let (image, socket, trace) = (
        dir.join("disk.img"),
        dir.join("blk.sock"),
        dir.join("trace"),
    );
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let mut backend = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=fdatasync,write", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_cordon"))
        .args(["device", "block", "--socket"])
        .arg(&socket)
        .arg("--image")
        .arg(&image)
        .process_group(0)
        .spawn()
        .expect("strace is installed by the test command");
    wait_for(&socket);
    let spec = format!("block:{}", socket.display());
    let r = common::run(&[
        "--vhost-user",
        &spec,
        guest("blkcheck").to_str().unwrap(),
        "--",
        "no-host-pattern",
    ]);
    // strace and the traced backend share a process group: end both (a
    // killed strace would leave its tracee running).
    // SAFETY: kill has no memory effects; the group is the one we made.
    unsafe { libc::kill(-(backend.id() as i32), libc::SIGKILL) };
    let _ = backend.wait();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&trace).expect("trace");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("fdatasync("))
        .expect("the flush called fdatasync");
    let done = (start..lines.len())
        .find(|&i| lines[i].contains("fdatasync") && lines[i].trim_end().ends_with("= 0"))
        .expect("fdatasync returned 0");
    let notify = |l: &&str| l.contains("write(") && l.contains(", 8)");
    assert!(
        !lines[start..done].iter().any(notify),
        "a notification while fdatasync ran:\n{text}"
    );
    assert!(
        lines[done..].iter().any(notify),
        "the flush was notified after fdatasync:\n{text}"
    );
}

/// Kills the block backend as soon as the guest saw its flush complete:
/// every byte it wrote is in the file.
#[test]
fn flushed_bytes_survive_killing_the_backend() {
    let image = temp_dir("kill").join("disk.img");
    std::fs::write(&image, vec![0u8; 8 << 20]).unwrap();
    let mut child = cordon()
        .args(["run", "--log-level", "debug", "--disk"])
        .arg(&image)
        .arg(guest("blkcheck"))
        .args(["--", "no-host-pattern", "hold-after-flush"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    for line in stdout.lines() {
        let line = line.expect("stdout line");
        seen.push_str(&line);
        seen.push('\n');
        if line == "blkcheck: holding" {
            break;
        }
    }
    assert!(seen.contains("blkcheck: flushed"), "{seen}");
    // The device pid is in the supervisor's debug log, written before boot.
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = String::new();
    let mut buf = [0u8; 4096];
    let pid = loop {
        let n = std::io::Read::read(&mut stderr, &mut buf).expect("stderr");
        assert!(n > 0, "no device pid in: {log}");
        log.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(pid) = log
            .lines()
            .find_map(|l| l.split("block0 device process started, pid ").nth(1))
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            break pid;
        }
    };
    // SAFETY: kill has no memory effects; `pid` is the block backend.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let (out, _) = wait_limited(child, GONE_WITHIN);
    assert_eq!(
        out.status.code(),
        Some(125),
        "a dead device ends the sandbox"
    );
    assert!(!alive(pid));
    assert!(
        has_guest_pattern(&image),
        "every flushed byte is in the file"
    );
}
