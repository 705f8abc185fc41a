//! Each hostile guest ends the way Guest ABI v1 says, with cordon's exit code
//! and one stderr line, and leaves no process behind.

mod common;

use common::{guest, run};

fn run_guest(name: &str, extra: &[&str]) -> common::Run {
    let path = guest(name);
    let mut args: Vec<&str> = extra.to_vec();
    args.push(path.to_str().expect("utf-8 path"));
    run(&args)
}

#[test]
fn triple_fault_is_a_vcpu_fault() {
    let r = run_guest("triple-fault", &[]);
    r.expect(120, "vCPU 0 fault: shutdown (triple fault) at pc 0x");
}

#[test]
fn emulation_failure_is_a_vcpu_fault() {
    let r = run_guest("emulation-failure", &[]);
    r.expect(
        120,
        "vCPU 0 fault: internal error (suberror 1: emulation failure) at pc 0x",
    );
}

#[test]
fn mmio_storm_is_counted_and_survived() {
    let r = run_guest("mmio-storm", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("guest made 512 unclaimed accesses: 0 port reads, 0 port writes, 256 MMIO reads, 256 MMIO writes"),
        "{}",
        r.stderr
    );
    // The per-access log is rate-limited: far fewer lines than accesses.
    let lines = r
        .stderr
        .lines()
        .filter(|l| l.contains("unclaimed MMIO"))
        .count();
    assert!((1..=20).contains(&lines), "{lines} unclaimed-access lines");
}

#[test]
fn console_flood_hits_the_budget() {
    let r = run_guest("console-flood", &["--console-budget", "3000"]);
    r.expect(121, "guest wrote past its console budget of 3000 bytes");
    assert_eq!(r.stdout.len(), 3000, "exactly the budget reaches stdout");
}

#[test]
fn spin_is_ended_by_the_timeout() {
    let r = run_guest("spin", &["--timeout", "0.5"]);
    r.expect(124, "timeout after 0.5 s (vCPU 0 at pc 0x");
}

#[test]
fn exit_values_above_255_are_refused() {
    let r = run_guest("bad-exit", &[]);
    r.expect(122, "guest exit value 4096 is above 255");
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    let r = run_guest("stack-overflow", &[]);
    r.expect(120, "stack overflow into the guard page of vCPU 0");
}

#[test]
fn writing_code_faults() {
    let r = run_guest("write-code", &[]);
    r.expect(120, "read-only page");
}

#[test]
fn bad_console_writes_are_dropped_and_counted() {
    let r = run_guest("bad-console-write", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("survived 5 bad writes"), "{}", r.stdout);
    assert!(
        r.stderr.contains("guest made 5 unclaimed accesses"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("console write of 16 bytes at 0xdead00000000 dropped"),
        "{}",
        r.stderr
    );
}
