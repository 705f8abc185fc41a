//! cordon as an unprivileged user: a uid made for the test, with nothing
//! but access to /dev/kvm (group kvm, as Debian's udev rule gives it) and a
//! cgroup delegated to it, runs jailed sandboxes with devices; user
//! namespaces give the jail the rest. Needs root to set that up, as CI has.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{guest, wait_limited, GONE_WITHIN};

const USER: &str = "cordon-test";

fn sh(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a setup command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn id(flag: &str, name: &str) -> u32 {
    let out = sh(Command::new("id").args([flag, name]));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

/// The test user, created if missing; its uid and gid.
fn test_user() -> (u32, u32) {
    let exists = Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        sh(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ]));
    }
    (id("-u", USER), id("-g", USER))
}

/// The gid that may open /dev/kvm: Debian's udev rule makes it root:kvm
/// 0660; a host left at root:root 0600 is given that rule's result.
fn kvm_group() -> u32 {
    sh(Command::new("groupadd").args(["--force", "--system", "kvm"]));
    let out = sh(Command::new("getent").args(["group", "kvm"]));
    let gid = String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("kvm gid");
    let meta = std::fs::metadata("/dev/kvm").expect("/dev/kvm");
    if std::os::unix::fs::MetadataExt::gid(&meta) == 0 {
        sh(Command::new("chgrp").args(["kvm", "/dev/kvm"]));
        sh(Command::new("chmod").args(["0660", "/dev/kvm"]));
    }
    gid
}

/// Delegates `<cgroup>/cordon` in every hierarchy to `uid`, as an
/// administrator (or systemd's Delegate=yes) would; returns the dirs.
fn delegate_cgroups(uid: u32, gid: u32) -> Vec<PathBuf> {
    let bases = match jail::cgroup::Hierarchy::detect().expect("cgroup hierarchy") {
        jail::cgroup::Hierarchy::V1 { memory, cpu, pids } => vec![memory, cpu, pids],
        jail::cgroup::Hierarchy::V2 { base } => vec![base],
    };
    let mut dirs: Vec<PathBuf> = bases.into_iter().map(|b| b.join("cordon")).collect();
    dirs.dedup();
    for dir in &dirs {
        std::fs::create_dir_all(dir).expect("cgroup dir");
        chown(dir, uid, gid);
        for file in ["cgroup.procs", "tasks", "cgroup.subtree_control"] {
            let path = dir.join(file);
            if path.exists() {
                chown(&path, uid, gid);
            }
        }
    }
    dirs
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// `cordon ARGS` as the test user.
fn as_user(uid: u32, gid: u32, kvm: u32, args: &[&str]) -> Output {
    let child = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg(format!("--groups={kvm}"))
        .arg(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv");
    wait_limited(child, GONE_WITHIN).0
}

#[test]
fn an_unprivileged_user_runs_jailed_sandboxes_with_devices() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test sets up a user and needs root");
    let (uid, gid) = test_user();
    let kvm = kvm_group();
    let dirs = delegate_cgroups(uid, gid);

    let check = as_user(uid, gid, kvm, &["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{text}");
    let verdict = text.lines().find(|l| l.trim_start().starts_with("jail "));
    assert!(verdict.is_some_and(|l| l.ends_with(" yes")), "{text}");

    let hello = guest("hello");
    let out = as_user(uid, gid, kvm, &["run", hello.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Hello from a cordon guest!"), "{stdout}");

    let dir = std::env::temp_dir().join(format!("cordon-unpriv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).expect("image");
    chown(&dir, uid, gid);
    chown(&disk, uid, gid);
    let rng = guest("rng-read");
    let disk_arg = disk.to_str().expect("path");
    let args = ["run", "--rng", "--console", "--disk", disk_arg];
    let out = as_user(
        uid,
        gid,
        kvm,
        &[&args[..], &[rng.to_str().expect("path")]].concat(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("rng-read: read 4096 bytes"), "{stdout}");

    // The README's example, a WebAssembly module, as the user.
    let wasm = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello.wasm");
    let out = as_user(uid, gid, kvm, &["run", wasm]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "Hello from WebAssembly in a cordon!\n");

    // A path the user may not open is refused before anything starts.
    let root_only = dir.join("root-only.img");
    std::fs::write(&root_only, vec![0u8; 4096]).expect("image");
    std::fs::set_permissions(
        &root_only,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let denied = format!("{}", root_only.display());
    let out = as_user(
        uid,
        gid,
        kvm,
        &["run", "--disk", &denied, hello.to_str().expect("path")],
    );
    assert_eq!(
        out.status.code(),
        Some(66),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for d in dirs {
        chown(&d, 0, 0);
    }
    std::fs::remove_dir_all(dir).ok();
}
