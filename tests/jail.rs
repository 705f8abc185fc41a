//! The whole jail, end to end, on the processes of a real running sandbox:
//! what /proc shows of each, what the supervisor reports when a jailed
//! process is stopped by SIGSYS, and that the sandbox's cgroup goes away.
//! Each layer alone is proven by the `jail` crate's own tests.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{cordon, guest, temp_dir, wait_limited, GONE_WITHIN};

/// Namespaces every jailed process has of its own (not the host's).
const NAMESPACES: [&str; 6] = ["user", "mnt", "pid", "net", "ipc", "uts"];
/// Shared by the processes of one sandbox.
const SHARED: [&str; 4] = ["user", "net", "ipc", "uts"];
/// One per process.
const PER_PROCESS: [&str; 2] = ["mnt", "pid"];

/// Starts a sandbox that runs until stopped: spin, with every device; its
/// events go to `disk` + ".events".
fn start_sandbox(disk: &Path, stdin: Stdio) -> Child {
    let events = format!("{}.events", disk.display());
    let disk = format!("{}", disk.display());
    cordon()
        .args(["run", "--log-level", "debug", "--timeout", "20"])
        .args(["--events", &events])
        .args(["--console", "--rng", "--disk", &disk])
        .arg(guest("spin"))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cordon")
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn name(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim()
        .to_string()
}

/// The supervisor's children once all four (vm, console, block, rng) run.
fn children(supervisor: i32) -> Vec<i32> {
    let deadline = Instant::now() + GONE_WITHIN;
    loop {
        let found: Vec<i32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&pid| ppid(pid) == Some(supervisor))
            .collect();
        // Exec'd children only: a forked one that has not exec'd yet (or
        // the short-lived process that entered the namespaces) has the
        // supervisor's command line.
        let started: Vec<i32> = found
            .iter()
            .copied()
            .filter(|&p| name(p).contains(" jail"))
            .collect();
        if started.len() == 4 {
            return started;
        }
        assert!(
            Instant::now() < deadline,
            "children of {supervisor}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(path: &str) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("ns {kind} of {pid}: {e}"))
}

/// The threads of `pid` and their status.
fn threads(pid: i32) -> Vec<(String, HashMap<String, String>)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .filter_map(|e| e.ok())
        .map(|e| {
            let tid = e.file_name().to_string_lossy().into_owned();
            let comm =
                std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
            (
                comm.trim().to_string(),
                status(&format!("/proc/{pid}/task/{tid}/status")),
            )
        })
        .collect()
}

/// Whether `pid` has a handler for SIGSYS (SigCgt in /proc).
fn catches_sigsys(pid: i32) -> bool {
    let caught = status(&format!("/proc/{pid}/status"))
        .get("SigCgt")
        .and_then(|m| u64::from_str_radix(m, 16).ok())
        .unwrap_or(0);
    caught & (1 << (libc::SIGSYS - 1)) != 0
}

fn stop(child: &Child) {
    // SAFETY: kill takes a pid and a signal; the child is ours.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

#[test]
fn every_process_of_a_running_sandbox_is_jailed() {
    let dir = temp_dir("proc");
    let disk = dir.join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).expect("image");
    // A pipe, so the console's stdin is told apart from /dev/null.
    let mut sandbox = start_sandbox(&disk, Stdio::piped());
    let stdin = sandbox.stdin.take();
    let supervisor = sandbox.id() as i32;
    let pids = children(supervisor);
    for &pid in &pids {
        let who = format!("{pid} ({})", name(pid));
        let s = status(&format!("/proc/{pid}/status"));
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(s[cap], "0000000000000000", "{who} {cap}");
        }
        assert_eq!(s["NoNewPrivs"], "1", "{who}");
        assert_eq!(s["Seccomp"], "2", "{who}");
        // Pid 1 of its own pid namespace.
        assert_eq!(s["NSpid"].split_whitespace().nth(1), Some("1"), "{who}");
        for kind in NAMESPACES {
            assert_ne!(ns(&pid.to_string(), kind), ns("self", kind), "{who} {kind}");
        }
        // stdin only for the console, stdout for it and the vm process.
        let fd = |n: u32| std::fs::read_link(format!("/proc/{pid}/fd/{n}")).ok();
        let null = Some(PathBuf::from("/dev/null"));
        let cmd = name(pid);
        assert_eq!(
            fd(0) == null,
            !cmd.contains("device-console"),
            "{who} stdin"
        );
        let stdout_null = cmd.contains("device-block") || cmd.contains("device-rng");
        assert_eq!(fd(1) == null, stdout_null, "{who} stdout");
        // The empty root: nothing of the host's filesystem.
        let root: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/root"))
            .expect("root")
            .collect();
        assert!(root.is_empty(), "{who} sees {root:?}");
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        let mine = format!("cordon/sandbox-{supervisor}");
        assert!(
            cgroup.lines().filter(|l| l.contains(&mine)).count() >= 3,
            "{who}: {cgroup}"
        );
        assert!(
            std::fs::read_to_string(format!("/proc/{pid}/limits"))
                .expect("limits")
                .lines()
                .any(|l| l.starts_with("Max core file size") && l.contains(" 0 ")),
            "{who}"
        );
    }
    // One sandbox: shared namespaces equal, per-process ones distinct.
    let first = pids[0].to_string();
    for &pid in &pids[1..] {
        for kind in SHARED {
            assert_eq!(ns(&pid.to_string(), kind), ns(&first, kind), "{kind}");
        }
        for kind in PER_PROCESS {
            assert_ne!(ns(&pid.to_string(), kind), ns(&first, kind), "{kind}");
        }
    }
    // The vCPU thread carries its own, tighter filter on top.
    let vm = *pids
        .iter()
        .find(|&&p| name(p).starts_with("cordon vm"))
        .expect("vm process");
    let deadline = Instant::now() + GONE_WITHIN;
    let vcpu = loop {
        // It adds its filter first thing; give it the moment it needs.
        let found = threads(vm)
            .into_iter()
            .find(|(comm, s)| comm == "vcpu0" && s["Seccomp_filters"] != "1");
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no jailed vcpu0 thread");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(vcpu.1["Seccomp_filters"], "2");
    assert_eq!(
        status(&format!("/proc/{vm}/status"))["Seccomp_filters"],
        "1"
    );

    drop(stdin);
    stop(&sandbox);
    let (out, _) = wait_limited(sandbox, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(143));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("left behind"), "{stderr}");
    let hierarchy = jail::cgroup::Hierarchy::detect().expect("cgroup hierarchy");
    let base = match hierarchy {
        jail::cgroup::Hierarchy::V1 { memory, .. } => memory,
        jail::cgroup::Hierarchy::V2 { base } => base,
    };
    let cgroup_dir = base.join("cordon").join(format!("sandbox-{supervisor}"));
    assert!(!cgroup_dir.exists(), "{} remains", cgroup_dir.display());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_jailed_process_stopped_by_sigsys_is_reported_with_the_violation_code() {
    // A real seccomp trap in every policy is proven in jail/tests/
    // seccomp_filters.rs; here SIGSYS comes from kill(2), which takes the
    // same path from the handler up the control socket to the supervisor.
    for (victim, who) in [
        ("cordon vm", "the vm process"),
        ("cordon device-rng", "rng"),
    ] {
        let dir = temp_dir("sigsys");
        let disk = dir.join("disk.img");
        std::fs::write(&disk, vec![0u8; 1 << 20]).expect("image");
        let sandbox = start_sandbox(&disk, Stdio::null());
        let pids = children(sandbox.id() as i32);
        let pid = *pids
            .iter()
            .find(|&&p| name(p).starts_with(victim))
            .expect("victim");
        // pid 1 of its pid namespace ignores a signal from outside that it
        // has no handler for: wait until the reporter is installed.
        let deadline = Instant::now() + GONE_WITHIN;
        while !catches_sigsys(pid) {
            assert!(
                Instant::now() < deadline,
                "{victim} never installed its reporter"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: kill takes a pid and a signal.
        unsafe { libc::kill(pid, libc::SIGSYS) };
        let (out, _) = wait_limited(sandbox, GONE_WITHIN);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(159), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("cordon: seccomp violation in"))
            .unwrap_or_else(|| panic!("no violation line:\n{stderr}"));
        assert!(line.contains(who), "{line}");
        assert!(line.contains("not raised by seccomp"), "{line}");
        let events = std::fs::read_to_string(dir.join("disk.img.events")).expect("events");
        let process = if who == "rng" { "rng" } else { "vm" };
        let record = r#""event":"violation","time":"#;
        let violation = events
            .lines()
            .find(|l| l.contains(record))
            .unwrap_or_else(|| panic!("no violation event:\n{events}"));
        assert!(
            violation.contains(&format!(r#""process":"{process}","syscall":null"#)),
            "{violation}"
        );
        let end = events.lines().last().unwrap_or_default();
        assert!(
            end.contains(r#""exit":159,"cause":"jail-violation""#),
            "{end}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn no_jail_warns_and_leaves_the_processes_unconfined() {
    let child = cordon()
        .args([
            "run",
            "--no-jail",
            "--log-level",
            "debug",
            "--timeout",
            "20",
        ])
        .arg(guest("spin"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cordon");
    let supervisor = child.id() as i32;
    let deadline = Instant::now() + GONE_WITHIN;
    let vm = loop {
        let found = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|&pid| ppid(pid) == Some(supervisor) && name(pid).contains("no-jail"));
        if let Some(pid) = found {
            break pid;
        }
        assert!(Instant::now() < deadline, "no vm process");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status(&format!("/proc/{vm}/status"))["Seccomp"], "0");
    assert_eq!(ns(&vm.to_string(), "mnt"), ns("self", "mnt"));
    stop(&child);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARNING: --no-jail"),
        "no warning:\n{stderr}"
    );
}

#[test]
fn seccomp_log_mode_runs_and_a_bad_mode_is_a_usage_error() {
    let hello = guest("hello");
    let out = cordon()
        .args(["run", "--seccomp", "log"])
        .arg(&hello)
        .output()
        .expect("cordon");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = cordon()
        .args(["run", "--seccomp", "off"])
        .arg(&hello)
        .output()
        .expect("cordon");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected enforce or log"), "{stderr}");
}

#[test]
fn a_process_that_cannot_be_jailed_stops_the_sandbox_with_the_reason() {
    // A hard fd limit below the vm process's RLIMIT_NOFILE: raising it
    // needs CAP_SYS_RESOURCE of the host, which no jailed process has.
    let out = std::process::Command::new("prlimit")
        .arg("--nofile=100:100")
        .arg(env!("CARGO_BIN_EXE_cordon"))
        .arg("run")
        .arg(guest("hello"))
        .output()
        .expect("prlimit (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("cannot enter the jail: rlimits"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cordon: the vm process could not be jailed"),
        "{stderr}"
    );
    assert!(!stderr.contains("Hello"), "{stderr}");
}
