//! The cost of each layer of cordon's jail, applied as in production, for
//! `bench/jail.sh`. Each run is a fresh process, so no layer is amortised
//! over runs; steps are timed with CLOCK_MONOTONIC where they run and the
//! numbers come back through a pipe. Prints medians and 90th percentiles.
//!
//! - Per sandbox (once per `cordon run`, `vmm::spawn::SandboxJail::create`
//!   and `remove`), in a forked process each run: SandboxNamespaces::create,
//!   Hierarchy::detect, SandboxCgroup::create and remove.
//! - Per process, alternating: a plain fork whose child exits at once (the
//!   baseline), and a jailed process made as `vmm::spawn::exec` makes one
//!   (fork, cgroup::join_self, namespaces::enter_in_child; the supervisor
//!   waits in collect_child), whose clone (pid 1 of its pid namespace, as
//!   the real child is after exec) then applies every layer of
//!   `jail::process::enter` with the device-rng policy, and exits.
//! - Experiments, for what could replace the steps before exec: a child
//!   forked straight into a new pid namespace (no intermediate process),
//!   and joining a cgroup v2 group by cgroup.procs or clone3's
//!   CLONE_INTO_CGROUP.
//!
//! Every run follows `--pause-ms` of idle, so that it starts as cold as a
//! `cordon run` does (see bench/README.md: a cgroup migration may wait for
//! an RCU grace period, which back-to-back runs share). Needs root: it
//! creates cgroups.

use std::error::Error;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;
use jail::cgroup::{CgroupJoin, Hierarchy, Limits, SandboxCgroup};
use jail::namespaces::{self, NsFds, SandboxNamespaces};
use jail::seccomp::{Mode, Role, Violation};
use jail::{cgroup, fds, landlock, privileges, rlimits, root, seccomp};

type Res<T> = Result<T, Box<dyn Error>>;

/// Cost of each jail layer; needs root.
#[derive(FromArgs)]
struct Args {
    /// runs of each measurement (default 50)
    #[argh(option, default = "50")]
    runs: usize,
    /// idle time before each run, in ms (default 50: a cold start; see
    /// bench/README.md on cgroup migration and RCU)
    #[argh(option, default = "50")]
    pause_ms: u64,
}

/// Most numbers a child sends back.
const MAX_TIMES: usize = 12;

const JAILED_SPAWN: &str = "supervisor blocked in spawn, jailed (fork..collect_child)";
const JAILED_READY: &str = "until the child is in its namespaces (the 3 rows above)";
const JAILED_WHOLE: &str = "whole process, jailed (fork..reaped)";
const BASE_RUNS: &str = "baseline: fork, until the child runs";
const BASE_WHOLE: &str = "baseline: whole process (fork..reaped)";

/// What one per-sandbox run times, in order.
const SANDBOX_STEPS: [&str; 4] = [
    "SandboxNamespaces::create",
    "cgroup Hierarchy::detect",
    "SandboxCgroup::create",
    "SandboxCgroup::remove",
];

/// What the jailed child times, in order: before exec (in the forked
/// process, then in its clone), then the layers of `jail::process::enter`.
const JAILED_STEPS: [&str; 10] = [
    "fork, until the child runs",
    "cgroup::join_self",
    "enter_in_child (setns x4, clone NEWNS+NEWPID)",
    "enter_empty_root",
    "close_all_except",
    "rlimits::apply",
    "no_new_privs",
    "drop_all_capabilities",
    "landlock::restrict(&[])",
    "seccomp (sigsys reporter + device-rng filter)",
];

fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn pipe() -> Res<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()).into());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn fork() -> Res<libc::pid_t> {
    // SAFETY: this process is single-threaded, so the child may do anything.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
    }
    Ok(pid)
}

/// Reaps `pid`; an error unless it exited 0.
fn reap(pid: libc::pid_t) -> Res<()> {
    let mut status = 0;
    // SAFETY: `pid` is our child; waitpid writes only to `status`.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()).into());
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(());
    }
    Err(format!("child {pid} ended with wait status {status:#x}").into())
}

/// In a child: sends `times` (tag 'O') or the error (tag 'E') on `fd` in
/// one write, then exits. Allocates nothing on success, so it may run
/// under the device-rng seccomp filter.
fn send_and_exit(fd: RawFd, result: Result<&[u64], String>) -> ! {
    let mut buf = [0u8; 1 + 8 * MAX_TIMES];
    let text;
    let bytes: &[u8] = match result {
        Ok(times) => {
            buf[0] = b'O';
            for (chunk, t) in buf[1..].chunks_exact_mut(8).zip(times) {
                chunk.copy_from_slice(&t.to_ne_bytes());
            }
            &buf[..1 + 8 * times.len().min(MAX_TIMES)]
        }
        Err(msg) => {
            text = format!("E{msg}");
            text.as_bytes()
        }
    };
    // SAFETY: writes our buffer to an fd, then ends the process.
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
    }
}

/// Reads what `send_and_exit` (or the SIGSYS reporter) wrote: `n` numbers.
fn receive(pipe: &mut File, n: usize) -> Res<Vec<u64>> {
    let mut tag = [0u8; 1];
    pipe.read_exact(&mut tag)
        .map_err(|_| "the child died without a report")?;
    match tag[0] {
        b'O' => {
            let mut buf = vec![0u8; 8 * n];
            pipe.read_exact(&mut buf)?;
            let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or_default());
            Ok(buf.chunks_exact(8).map(word).collect())
        }
        b'E' => {
            let mut msg = String::new();
            pipe.read_to_string(&mut msg)?;
            Err(format!("in the child: {msg}").into())
        }
        first => {
            let mut record = [0u8; Violation::SIZE];
            record[0] = first;
            pipe.read_exact(&mut record[1..])?;
            let call = Violation::from_bytes(&record)
                .and_then(Violation::syscall_name)
                .unwrap_or("an unknown call");
            Err(format!("the device-rng seccomp filter stopped the child at {call}").into())
        }
    }
}

/// One per-sandbox run, in a fresh process: the times of SANDBOX_STEPS.
fn sandbox_run(h_name: &str) -> Res<Vec<u64>> {
    let (mut rx, tx) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        let mut t = [0u64; SANDBOX_STEPS.len()];
        let result = (|| {
            let s = now();
            drop(SandboxNamespaces::create().map_err(|e| e.to_string())?);
            let d = now();
            let h = Hierarchy::detect().map_err(|e| e.to_string())?;
            let c = now();
            let limits = Limits::for_sandbox(64, 1);
            let cg = SandboxCgroup::create(&h, h_name, &limits).map_err(|e| e.to_string())?;
            let r = now();
            cg.remove().map_err(|e| e.to_string())?;
            t = [d - s, c - d, r - c, now() - r];
            Ok(())
        })();
        send_and_exit(tx.as_raw_fd(), result.map(|()| &t[..]));
    }
    drop(tx);
    let times = receive(&mut rx, SANDBOX_STEPS.len());
    reap(pid)?;
    times
}

/// The layers of `jail::process::enter`, each timed, in a jailed clone.
fn apply_layers(result_fd: RawFd, t: &mut [u64]) -> Result<(), String> {
    let keep = [0, 1, 2, result_fd];
    let text = |e: &dyn Error| e.to_string();
    let limits = rlimits::Limits {
        max_open_files: 128,
    };
    let layers: [&dyn Fn() -> Result<(), String>; 7] = [
        &|| root::enter_empty_root().map_err(|e| text(&e)),
        &|| fds::close_all_except(&keep).map_err(|e| text(&e)),
        &|| rlimits::apply(&limits).map_err(|e| text(&e)),
        &|| privileges::no_new_privs().map_err(|e| text(&e)),
        &|| privileges::drop_all_capabilities().map_err(|e| text(&e)),
        &|| landlock::restrict(&[]).map(drop).map_err(|e| text(&e)),
        &|| {
            seccomp::install_sigsys_reporter(result_fd)
                .and_then(|()| seccomp::apply(Role::DeviceRng, Mode::Enforce))
                .map_err(|e| text(&e))
        },
    ];
    for (slot, layer) in t.iter_mut().zip(layers) {
        let start = now();
        layer()?;
        *slot = now() - start;
    }
    Ok(())
}

/// The forked child of a jailed run: enters the sandbox as
/// `vmm::spawn::exec` does; its clone applies the layers and reports.
fn jailed_child(t0: u64, ns: &NsFds, join: &CgroupJoin, pid_fd: RawFd, result_fd: RawFd) -> ! {
    let mut t = [0u64; JAILED_STEPS.len()];
    let a = now();
    let joined = cgroup::join_self(join);
    let b = now();
    // SAFETY: a single-threaded child right after fork; the fds are open.
    let entered = joined.and_then(|()| unsafe { namespaces::enter_in_child(ns, pid_fd) });
    if let Err(e) = entered {
        namespaces::report_failure(pid_fd, e);
        // SAFETY: ends the child.
        unsafe { libc::_exit(127) };
    }
    // Only the clone gets here.
    t[..3].copy_from_slice(&[a - t0, b - a, now() - b]);
    let result = apply_layers(result_fd, &mut t[3..]);
    send_and_exit(result_fd, result.map(|()| &t[..]))
}

/// Whole-process times, measured by the parent.
struct Whole {
    /// Until fork (or collect_child) returns: the supervisor is blocked.
    spawn: u64,
    /// From the report's arrival to the reap.
    exit: u64,
    /// Fork to reap.
    total: u64,
}

/// One jailed run: the child's times (JAILED_STEPS) and the whole.
fn jailed_run(ns: &NsFds, join: &CgroupJoin) -> Res<(Vec<u64>, Whole)> {
    let (pid_rx, pid_tx) = pipe()?;
    let (mut rx, tx) = pipe()?;
    let t0 = now();
    let forked = fork()?;
    if forked == 0 {
        jailed_child(t0, ns, join, pid_tx.as_raw_fd(), tx.as_raw_fd());
    }
    drop((pid_tx, tx));
    let pid = namespaces::collect_child(forked, OwnedFd::from(pid_rx))?;
    let spawned = now();
    finish_run(pid, &mut rx, JAILED_STEPS.len(), t0, spawned)
}

/// The parent's end of a run started at `t0` whose spawn returned at
/// `spawned`: the child's `n` numbers, the reap, and the whole.
fn finish_run(
    pid: libc::pid_t,
    rx: &mut File,
    n: usize,
    t0: u64,
    spawned: u64,
) -> Res<(Vec<u64>, Whole)> {
    let times = receive(rx, n);
    let reported = now();
    reap(pid)?;
    let end = now();
    let whole = Whole {
        spawn: spawned - t0,
        exit: end - reported,
        total: end - t0,
    };
    Ok((times?, whole))
}

/// One baseline run: a forked child that reports when it runs and exits.
fn baseline_run() -> Res<(u64, Whole)> {
    let (mut rx, tx) = pipe()?;
    let t0 = now();
    let pid = fork()?;
    if pid == 0 {
        send_and_exit(tx.as_raw_fd(), Ok(&[now() - t0]));
    }
    let spawned = now();
    drop(tx);
    let (times, whole) = finish_run(pid, &mut rx, 1, t0, spawned)?;
    Ok((times[0], whole))
}

/// Samples per row, in the order rows were first added.
#[derive(Default)]
struct Table(Vec<(String, Vec<u64>)>);

impl Table {
    fn add(&mut self, name: &str, ns: u64) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(ns),
            None => self.0.push((name.to_owned(), vec![ns])),
        }
    }

    fn section(&mut self, name: &str) {
        self.0.push((format!("**{name}**"), Vec::new()));
    }

    /// Median and 90th percentile (nearest rank) of a row, in us.
    fn stats(&self, name: &str) -> (f64, f64) {
        let Some((_, v)) = self.0.iter().find(|(n, _)| n == name) else {
            return (f64::NAN, f64::NAN);
        };
        let mut v = v.clone();
        v.sort_unstable();
        let us = |i: usize| v[i] as f64 / 1000.0;
        let n = v.len();
        let median = if n % 2 == 1 {
            us(n / 2)
        } else {
            (us(n / 2 - 1) + us(n / 2)) / 2.0
        };
        (median, us(((n * 9).div_ceil(10)).max(1) - 1))
    }

    fn print(&self) {
        println!("| layer | median us | p90 us |\n| --- | ---: | ---: |");
        for (name, v) in &self.0 {
            if v.is_empty() {
                println!("| {name} | | |");
            } else {
                let (median, p90) = self.stats(name);
                println!("| {name} | {median:.1} | {p90:.1} |");
            }
        }
    }
}

fn sandbox_rows(table: &mut Table, runs: usize, pause: Duration) -> Res<()> {
    table.section("per sandbox (once per cordon run)");
    let me = std::process::id();
    for i in 0..runs {
        std::thread::sleep(pause);
        let times = sandbox_run(&format!("bench-{me}-{i}"))?;
        for (name, t) in SANDBOX_STEPS.iter().zip(&times) {
            table.add(name, *t);
        }
        table.add("per sandbox, sum", times.iter().sum());
    }
    Ok(())
}

/// Experiment, not what cordon does: no intermediate process. The child
/// is forked straight into a new pid namespace (clone NEWPID: root only, as
/// the pid namespace is then owned by the host's user namespace), joins the
/// cgroup and the sandbox's namespaces and unshares its mount namespace.
fn direct_child(ns: &NsFds, join: &CgroupJoin) -> Result<(), String> {
    cgroup::join_self(join).map_err(|e| e.to_string())?;
    let steps = [
        (ns.user, libc::CLONE_NEWUSER),
        (ns.net, libc::CLONE_NEWNET),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.uts, libc::CLONE_NEWUTS),
    ];
    for (fd, kind) in steps {
        // SAFETY: setns takes an open namespace fd and flags.
        if unsafe { libc::setns(fd, kind) } != 0 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
    }
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!("unshare: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// One run of the experiment: (supervisor blocked, until the child is in
/// all its namespaces).
fn direct_run(ns: &NsFds, join: &CgroupJoin) -> Res<(u64, u64)> {
    let (mut rx, tx) = pipe()?;
    let flags = (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong;
    let t0 = now();
    // SAFETY: a raw clone without a stack is a fork; this process is
    // single-threaded.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        let result = direct_child(ns, join);
        let ready = [now() - t0];
        send_and_exit(tx.as_raw_fd(), result.map(|()| &ready[..]));
    }
    let spawned = now();
    if pid < 0 {
        return Err(format!("clone: {}", std::io::Error::last_os_error()).into());
    }
    drop(tx);
    let ready = receive(&mut rx, 1);
    reap(pid as libc::pid_t)?;
    Ok((spawned - t0, ready?[0]))
}

fn process_rows(table: &mut Table, runs: usize, pause: Duration) -> Res<()> {
    let ns = SandboxNamespaces::create()?;
    let cg = SandboxCgroup::create(
        &Hierarchy::detect()?,
        &format!("bench-{}", std::process::id()),
        &Limits::for_sandbox(64, 1),
    )?;
    let (mut jailed, mut base, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        std::thread::sleep(pause);
        base.push(baseline_run()?);
        std::thread::sleep(pause);
        jailed.push(jailed_run(&ns.fds(), &cg.join_fds())?);
        std::thread::sleep(pause);
        direct.push(direct_run(&ns.fds(), &cg.join_fds())?);
    }
    cg.remove()?;
    table.section("per process");
    for (run, whole) in &jailed {
        for (name, t) in JAILED_STEPS.iter().zip(run) {
            table.add(name, *t);
        }
        table.add(JAILED_SPAWN, whole.spawn);
        table.add(JAILED_READY, run[..3].iter().sum());
        table.add("exit + reap, jailed", whole.exit);
        table.add(JAILED_WHOLE, whole.total);
    }
    for (runs_at, whole) in &base {
        table.add(BASE_RUNS, *runs_at);
        table.add("baseline: supervisor blocked in fork", whole.spawn);
        table.add("baseline: exit + reap", whole.exit);
        table.add(BASE_WHOLE, whole.total);
    }
    table.section("experiment: no intermediate process (clone NEWPID, setns, unshare NEWNS)");
    for (spawn, ready) in direct {
        table.add("supervisor blocked in clone", spawn);
        table.add("until the child is in its namespaces", ready);
    }
    Ok(())
}

/// clone3's flag: create the child in the cgroup v2 group `cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A new directory in this process's cgroup of the v2 hierarchy, if one
/// is mounted.
fn v2_group() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split(' ').nth(4))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = PathBuf::from(mount)
        .join(own.trim_start_matches('/'))
        .join(format!("cordon-bench-{}", std::process::id()));
    std::fs::create_dir(&dir).ok().map(|()| dir)
}

/// A forked child that joins the group of `procs` (its cgroup.procs, open
/// for writing): the time of the write.
fn procs_write_run(procs: RawFd) -> Res<u64> {
    let (mut rx, tx) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        let start = now();
        // SAFETY: writes one byte from a static buffer to an fd.
        let n = unsafe { libc::write(procs, c"0".as_ptr().cast(), 1) };
        let t = [now() - start];
        send_and_exit(
            tx.as_raw_fd(),
            if n == 1 { Ok(&t) } else { Err("write".into()) },
        );
    }
    drop(tx);
    let t = receive(&mut rx, 1);
    reap(pid)?;
    Ok(t?[0])
}

/// A child created in the group `group` (its directory's fd) by clone3:
/// the time until it runs.
fn into_cgroup_run(group: RawFd) -> Res<u64> {
    let (mut rx, tx) = pipe()?;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: group as u64,
        ..CloneArgs::default()
    };
    let t0 = now();
    // SAFETY: clone3 without CLONE_VM and without a stack is a fork; the
    // child only writes to a pipe and exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args, std::mem::size_of::<CloneArgs>()) };
    if pid == 0 {
        send_and_exit(tx.as_raw_fd(), Ok(&[now() - t0]));
    }
    if pid < 0 {
        return Err(format!("clone3: {}", std::io::Error::last_os_error()).into());
    }
    drop(tx);
    let t = receive(&mut rx, 1);
    reap(pid as libc::pid_t)?;
    Ok(t?[0])
}

/// Experiments, not what cordon does: in a cgroup v2 group (no controllers
/// needed), a forked child that joins by writing cgroup.procs, and a child
/// created in it by clone3(CLONE_INTO_CGROUP), which migrates no task.
fn v2_rows(table: &mut Table, runs: usize, pause: Duration) -> Res<()> {
    let Some(dir) = v2_group() else {
        println!("(no cgroup v2 hierarchy: the CLONE_INTO_CGROUP experiment is skipped)");
        return Ok(());
    };
    table.section("experiment: a cgroup v2 group, 1 hierarchy");
    let result = (|| -> Res<()> {
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))?;
        let group = File::open(&dir)?;
        for _ in 0..runs {
            std::thread::sleep(pause);
            let t = procs_write_run(procs.as_raw_fd())?;
            table.add("write cgroup.procs (join after fork)", t);
            std::thread::sleep(pause);
            let t = into_cgroup_run(group.as_raw_fd())?;
            table.add("clone3(CLONE_INTO_CGROUP), until the child runs", t);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir(&dir);
    result
}

fn report(args: &Args) -> Res<()> {
    let pause = Duration::from_millis(args.pause_ms);
    let mut table = Table::default();
    sandbox_rows(&mut table, args.runs, pause)?;
    process_rows(&mut table, args.runs, pause)?;
    v2_rows(&mut table, args.runs, pause)?;
    println!(
        "jail_layers: {} runs each, {} ms idle before each run, CLOCK_MONOTONIC",
        args.runs, args.pause_ms
    );
    table.print();
    let extra = table.stats(JAILED_WHOLE).0 - table.stats(BASE_WHOLE).0;
    let verdict = if extra <= 1000.0 { "met" } else { "NOT met" };
    println!("\njail per process (whole-process medians, jailed - baseline): {extra:.0} us; target <= 1000 us: {verdict}");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Args = argh::from_env();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("jail_layers: must run as root: it creates and removes cgroups (cordon/bench-*) as cordon run does");
        return std::process::ExitCode::from(2);
    }
    if args.runs < 2 {
        eprintln!("jail_layers: --runs must be at least 2");
        return std::process::ExitCode::from(2);
    }
    match report(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jail_layers: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
