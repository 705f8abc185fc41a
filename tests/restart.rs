//! The restart policies (`--on-vcpu-fault`, `--max-restarts`,
//! `--restart-window`) against real faults of real guests: each guest
//! prints its boot counter, so the tests see every restart, and the
//! `--events` file shows the action taken for each fault.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::blk::{has_guest_pattern, host_pattern_image};
use common::{alive, cordon, guest, run, temp_dir, wait_limited, GONE_WITHIN};

/// The `fault` records of an `--events` file: (action, restarts, vcpu,
/// process).
fn faults(events: &str) -> Vec<(String, u64, Option<u64>, Option<String>)> {
    events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["event"] == "fault")
        .map(|v| {
            (
                v["action"].as_str().expect("action").to_string(),
                v["restarts"].as_u64().expect("restarts"),
                v["vcpu"].as_u64(),
                v["process"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The boot counters a guest printed ("NAME: boot N" lines).
fn boots(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|l| l.split(": boot ").nth(1))
        .map(|n| n.trim().parse().expect("a boot counter"))
        .collect()
}

/// Runs `guest` under `policy` with an events file; returns the run and
/// the events.
fn run_with(guest_name: &str, policy: &[&str]) -> (common::Run, String) {
    let events = temp_dir(&format!("{guest_name}-{}", policy.join("_"))).join("events.jsonl");
    let image = guest(guest_name);
    let mut args = policy.to_vec();
    args.extend([
        "--events",
        events.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    let r = run(&args);
    let text = std::fs::read_to_string(&events).expect("events file");
    (r, text)
}

fn actions(events: &str) -> Vec<String> {
    faults(events).into_iter().map(|f| f.0).collect()
}

#[test]
fn stop_is_the_default_and_ends_at_the_first_fault() {
    let (r, events) = run_with("triple-fault", &[]);
    r.expect(120, "vCPU 0 fault: shutdown (triple fault)");
    assert_eq!(boots(&r.stdout), [0]);
    assert_eq!(faults(&events), [("stop".into(), 0, Some(0), None)]);
    assert!(r.stderr.contains("; action: stop"), "{}", r.stderr);
}

/// Each way a guest can fault, under each policy, with one restart
/// allowed: `ud2` (an exception the guest cannot handle: a triple fault
/// without an IDT), a stack overflow into the guard page (a page fault,
/// likewise) and an MMIO access KVM cannot emulate. A failed entry, which
/// kvm_pvm cannot produce, is covered on kvm-amd in tests/l1_kvm.rs.
#[test]
fn every_fault_under_every_policy() {
    let faults = [
        ("triple-fault", "shutdown (triple fault)"),
        (
            "stack-overflow",
            "stack overflow into the guard page of vCPU 0",
        ),
        (
            "emulation-failure",
            "internal error (suberror 1: emulation failure)",
        ),
    ];
    for (guest_name, cause) in faults {
        for policy in ["stop", "reset-vcpu", "reboot"] {
            let (r, events) = run_with(
                guest_name,
                &["--on-vcpu-fault", policy, "--max-restarts", "1"],
            );
            let what = format!("{guest_name} under {policy}");
            assert_eq!(r.code, 120, "{what}: {}", r.stderr);
            assert!(r.stderr.contains(cause), "{what}: {}", r.stderr);
            let (expected_boots, expected_actions): (&[u64], &[&str]) = match policy {
                "stop" => (&[0], &["stop"]),
                _ => (&[0, 1], &[policy, "stop"]),
            };
            assert_eq!(boots(&r.stdout), expected_boots, "{what}");
            assert_eq!(actions(&events), expected_actions, "{what}");
        }
    }
}

#[test]
fn reset_vcpu_restarts_a_triple_faulted_guest_until_the_budget_is_spent() {
    let (r, events) = run_with(
        "triple-fault",
        &["--on-vcpu-fault", "reset-vcpu", "--max-restarts", "2"],
    );
    r.expect(120, "the restart budget is spent");
    assert_eq!(boots(&r.stdout), [0, 1, 2]);
    let seen = faults(&events);
    let expected: Vec<(String, u64, Option<u64>, Option<String>)> = vec![
        ("reset-vcpu".into(), 1, Some(0), None),
        ("reset-vcpu".into(), 2, Some(0), None),
        ("stop".into(), 2, Some(0), None),
    ];
    assert_eq!(seen, expected);
    // One vm process for the whole run: the vCPU was reset in place.
    assert_eq!(
        r.stderr.matches("vm process started").count(),
        1,
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("action: reset-vcpu (restart 1; at most 2 within 60 s)"),
        "{}",
        r.stderr
    );
}

#[test]
fn reset_vcpu_reloads_a_guest_that_has_devices() {
    // The consoles' rings are stopped before the image is loaded again;
    // the guest sets them up anew after each reset.
    let (r, events) = run_with(
        "emulation-failure",
        &[
            "--console",
            "--on-vcpu-fault",
            "reset-vcpu",
            "--max-restarts",
            "1",
        ],
    );
    r.expect(120, "emulation failure");
    assert_eq!(boots(&r.stdout), [0, 1]);
    assert_eq!(actions(&events), ["reset-vcpu", "stop"]);
}

#[test]
fn reboot_replaces_the_vm_process_after_an_emulation_failure() {
    let (r, events) = run_with(
        "emulation-failure",
        &["--on-vcpu-fault", "reboot", "--max-restarts", "2"],
    );
    r.expect(120, "the restart budget is spent");
    assert_eq!(boots(&r.stdout), [0, 1, 2]);
    assert_eq!(actions(&events), ["reboot", "reboot", "stop"]);
    assert_eq!(
        r.stderr.matches("vm process started").count(),
        3,
        "{}",
        r.stderr
    );
}

#[test]
fn reset_vcpu_falls_back_to_reboot_with_several_vcpus() {
    let (r, events) = run_with(
        "triple-fault",
        &[
            "--cpus",
            "2",
            "--on-vcpu-fault",
            "reset-vcpu",
            "--max-restarts",
            "1",
        ],
    );
    assert_eq!(r.code, 120, "{}", r.stderr);
    assert_eq!(actions(&events), ["reboot", "stop"]);
}

#[test]
fn zero_restarts_stop_at_once() {
    let (r, events) = run_with(
        "triple-fault",
        &["--on-vcpu-fault", "reboot", "--max-restarts", "0"],
    );
    r.expect(120, "the restart budget is spent");
    assert_eq!(boots(&r.stdout), [0]);
    assert_eq!(actions(&events), ["stop"]);
}

#[test]
fn the_budget_refills_once_restarts_leave_the_window() {
    // One restart per 1 ms window: each restart comes later than that, so
    // the guest is restarted until the timeout, which is the whole
    // sandbox's (reboots included), ends it.
    for policy in ["reset-vcpu", "reboot"] {
        let (r, _) = run_with(
            "triple-fault",
            &[
                "--on-vcpu-fault",
                policy,
                "--max-restarts",
                "1",
                "--restart-window",
                "0.001",
                "--timeout",
                "0.5",
            ],
        );
        r.expect(124, "timeout");
        assert!(
            r.elapsed < Duration::from_secs(3),
            "{policy}: {:?}",
            r.elapsed
        );
        let seen = boots(&r.stdout);
        assert!(
            seen.len() > 3,
            "{policy}: only {} boots in 0.5 s",
            seen.len()
        );
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    }
}

#[test]
fn bad_policy_flags_are_usage_errors() {
    let image = guest("hello");
    for args in [
        vec!["--on-vcpu-fault", "restart"],
        vec!["--restart-window", "0"],
        vec!["--restart-window", "-1"],
        vec!["--max-restarts", "x"],
    ] {
        let out = cordon()
            .arg("run")
            .args(&args)
            .arg(&image)
            .output()
            .expect("cordon");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
    }
}

/// A running `cordon run --log-level debug ARGS GUEST`, its output as
/// lines.
struct Spin {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(lines: &mpsc::Receiver<String>, what: &str, want: impl Fn(&str) -> bool) -> String {
    loop {
        let line = lines
            .recv_timeout(GONE_WITHIN)
            .unwrap_or_else(|_| panic!("no {what}"));
        if want(&line) {
            return line;
        }
    }
}

impl Spin {
    fn start(args: &[&str]) -> Spin {
        Spin::guest("spin", args)
    }

    fn guest(name: &str, args: &[&str]) -> Spin {
        let mut child = cordon()
            .arg("run")
            .args(["--log-level", "debug", "--timeout", "20"])
            .args(args)
            .arg(guest(name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cordon");
        Spin {
            stdin: child.stdin.take(),
            stderr: lines_of(child.stderr.take().expect("stderr")),
            stdout: lines_of(child.stdout.take().expect("stdout")),
            child,
        }
    }

    /// The pid of the next process whose start the log reports as
    /// "`what` started, pid N".
    fn started(&self, what: &str) -> i32 {
        let needle = format!("{what} started, pid ");
        let line = next_line(&self.stderr, &needle, |l| l.contains(&needle));
        line.split(&needle)
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .expect("a pid")
    }

    /// Writes `line` to the sandbox's stdin and waits for the guest to
    /// print it back.
    fn echo(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write stdin");
        next_line(&self.stdout, &format!("the echo of {line:?}"), |l| {
            l == line
        });
    }

    /// The pid of the next vm process, once its guest has printed boot
    /// `boot`.
    fn running_vm(&self, boot: u64) -> i32 {
        let line = next_line(&self.stderr, "vm process start in the log", |l| {
            l.contains("vm process started, pid ")
        });
        let pid = line
            .split("vm process started, pid ")
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .expect("a pid");
        let printed = format!("spin: boot {boot}");
        next_line(&self.stdout, &printed, |l| l == printed);
        pid
    }
}

fn kill(pid: i32) {
    // SAFETY: kill has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

#[test]
fn a_killed_vm_process_is_rebooted_until_the_budget_is_spent() {
    let events = temp_dir("killed-vm").join("events.jsonl");
    let spin = Spin::start(&[
        "--on-vcpu-fault",
        "reboot",
        "--max-restarts",
        "1",
        "--events",
        events.to_str().unwrap(),
    ]);
    let first = spin.running_vm(0);
    kill(first);
    let second = spin.running_vm(1);
    assert_ne!(first, second);
    kill(second);
    let (out, _) = wait_limited(spin.child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(123));
    assert!(!alive(second));
    let text = std::fs::read_to_string(&events).expect("events");
    let seen = faults(&text);
    assert_eq!(seen.len(), 2, "{text}");
    assert_eq!(seen[0], ("reboot".into(), 1, None, Some("vm".into())));
    assert_eq!(seen[1], ("stop".into(), 1, None, Some("vm".into())));
    let end = text.lines().last().expect("an end record");
    assert!(end.contains("the restart budget is spent"), "{end}");
}

#[test]
fn a_killed_vm_process_under_reset_vcpu_is_rebooted() {
    // reset-vcpu cannot repair a vCPU whose process is gone.
    let spin = Spin::start(&["--on-vcpu-fault", "reset-vcpu", "--max-restarts", "1"]);
    kill(spin.running_vm(0));
    kill(spin.running_vm(1));
    let (out, _) = wait_limited(spin.child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(123));
}

#[test]
fn a_killed_console_process_is_restarted_and_the_guest_goes_on() {
    let events = temp_dir("killed-console").join("events.jsonl");
    let mut echo = Spin::guest(
        "console-echo",
        &[
            "--console",
            "--on-vcpu-fault",
            "reset-vcpu",
            "--max-restarts",
            "1",
            "--events",
            events.to_str().unwrap(),
        ],
    );
    let console = echo.started("console0+console1 device process");
    echo.echo("before");
    kill(console);
    // The restarted process reads the same stdin; the vm process replayed
    // both consoles' rings to it, so the guest's posted buffers are served.
    let restarted = echo.started("console0+console1 device process");
    assert_ne!(console, restarted);
    echo.echo("after");
    // Console 1 (the guest's stderr) is reconnected too before the next
    // kill, which is over the budget: the sandbox stops.
    next_line(&echo.stderr, "console 1's reconnect", |l| {
        l.contains("device slot 1 reconnected")
    });
    kill(restarted);
    let (out, _) = wait_limited(echo.child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(125));
    let text = std::fs::read_to_string(&events).expect("events");
    let seen = faults(&text);
    let console = Some("console0+console1".to_string());
    assert_eq!(
        seen,
        [
            ("restart-device".into(), 1, None, console.clone()),
            ("stop".into(), 1, None, console),
        ],
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .contains("the restart budget is spent"),
        "{text}"
    );
    // Both consoles (slots 0 and 1) were replayed to the first restart.
    for slot in 0..2 {
        let record = format!(r#""DeviceReconnected":{{"slot":{slot},"error":null}}"#);
        assert!(text.contains(&record), "{text}");
    }
}

#[test]
fn a_killed_device_process_under_stop_ends_the_sandbox() {
    let mut echo = Spin::guest("console-echo", &["--console"]);
    let console = echo.started("console0+console1 device process");
    echo.echo("before");
    kill(console);
    let (out, _) = wait_limited(echo.child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn a_block_backend_killed_while_blkcheck_runs_loses_no_write() {
    // blkcheck reads the host's pattern, writes its own over the whole disk
    // (requests of up to 1 MiB, several in flight), flushes and reads it
    // back; the block backend is killed three times meanwhile. Each time
    // the vm process replays the rings to the new backend from the used
    // index, so the requests in flight are served again, in order.
    let dir = temp_dir("killed-block");
    let (image, events) = (dir.join("disk.img"), dir.join("events.jsonl"));
    host_pattern_image(&image, 256 << 20);
    let run = Spin::guest(
        "blkcheck",
        &[
            "--disk",
            image.to_str().unwrap(),
            "--on-vcpu-fault",
            "reset-vcpu",
            "--max-restarts",
            "10",
            "--events",
            events.to_str().unwrap(),
        ],
    );
    // blkcheck takes about 300 ms over this disk: three kills in its
    // first 150 ms.
    let mut backend = run.started("block0 device process");
    for delay_ms in [25, 50, 50] {
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill(backend);
        backend = run.started("block0 device process");
        // The next kill only once the vm process has replayed the rings.
        next_line(&run.stderr, "the block device's reconnect", |l| {
            l.contains("device slot 0 reconnected")
        });
    }
    next_line(&run.stdout, "blkcheck: ok", |l| l == "blkcheck: ok");
    let (out, _) = wait_limited(run.child, GONE_WITHIN);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        has_guest_pattern(&image),
        "the disk lacks blkcheck's pattern"
    );
    let text = std::fs::read_to_string(&events).expect("events");
    let actions = actions(&text);
    assert_eq!(actions, ["restart-device"; 3], "{text}");
    assert_eq!(
        text.matches(r#""DeviceReconnected":{"slot":0,"error":null}"#)
            .count(),
        3,
        "{text}"
    );
}
