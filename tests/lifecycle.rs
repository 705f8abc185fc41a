//! The normal path and the ways a sandbox is ended from outside.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{alive, cordon, guest, run, vm_pid, wait_limited, GONE_WITHIN};

#[test]
fn hello_gets_argv_and_env_and_exits_with_its_status() {
    let hello = guest("hello");
    let r = run(&[
        "--env",
        "GREETING=hi there",
        hello.to_str().unwrap(),
        "--",
        "7",
        "--flag",
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stdout.contains("argv[0] = hello"), "{}", r.stdout);
    assert!(r.stdout.contains("argv[1] = 7"), "{}", r.stdout);
    assert!(r.stdout.contains("argv[2] = --flag"), "{}", r.stdout);
    assert!(
        r.stdout.contains("env[0] = GREETING=hi there"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("env[1]"),
        "host environment leaked: {}",
        r.stdout
    );
    assert_eq!(r.cause_line(), None, "a guest exit has no cause line");
}

#[test]
fn every_vcpu_enters_with_its_index() {
    let hello = guest("hello");
    let r = run(&["--cpus", "4", hello.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("vcpu = 0 of 4"), "{}", r.stdout);
    for i in 1..4 {
        let line = format!("hello: vCPU {i} is up\n");
        assert!(r.stdout.contains(&line), "vCPU {i}: {}", r.stdout);
    }
}

fn start_spin() -> (std::process::Child, i32) {
    let mut child = cordon()
        .args(["run", "--log-level", "debug"])
        .arg(guest("spin"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read stderr until the vm pid shows up.
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while vm_pid(&seen).is_none() {
        let n = std::io::Read::read(&mut stderr, &mut buf).expect("read stderr");
        assert!(n > 0, "cordon exited early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, vm_pid(&seen).expect("pid"))
}

fn signal(pid: u32, signo: i32) {
    // SAFETY: kill has no memory effects; `pid` is our child.
    assert_eq!(unsafe { libc::kill(pid as i32, signo) }, 0);
}

#[test]
fn sigterm_ends_the_sandbox() {
    let (child, vm) = start_spin();
    signal(child.id(), libc::SIGTERM);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(143));
    assert!(!alive(vm), "vm process {vm} survived SIGTERM");
}

#[test]
fn sigint_ends_the_sandbox() {
    let (child, vm) = start_spin();
    signal(child.id(), libc::SIGINT);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(130));
    assert!(!alive(vm), "vm process {vm} survived SIGINT");
}

#[test]
fn vm_process_dies_with_its_supervisor() {
    let (child, vm) = start_spin();
    signal(child.id(), libc::SIGKILL);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    assert_eq!(out.status.code(), None, "killed by a signal");
    let deadline = std::time::Instant::now() + GONE_WITHIN;
    while alive(vm) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(vm), "vm process {vm} outlived its supervisor");
}

#[test]
fn a_killed_vm_process_is_reported() {
    let (child, vm) = start_spin();
    signal(vm as u32, libc::SIGKILL);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(123));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = stderr; // stderr was drained by the reader thread
}

#[test]
fn check_reports_this_host() {
    let out = cordon().arg("check").output().expect("cordon check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("API version"), "{text}");
    assert!(text.contains("unikernels"), "{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "this host runs unikernels:\n{text}"
    );
}

#[test]
fn vm_role_is_not_for_users() {
    let out = cordon()
        .arg("vm")
        .stdin(Stdio::null())
        .output()
        .expect("cordon vm");
    assert_eq!(out.status.code(), Some(64));
}
