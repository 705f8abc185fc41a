//! A QEMU machine under software emulation (TCG): started with a timeout,
//! its serial console read line by line for markers.

use super::kernel::Kernel;
use super::lock::MachineLock;
use super::marks::{self, Mark};
use super::process::Group;
use super::tsc;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The kernel command line every machine gets before the test's additions:
/// serial console, no boot chatter, and a panic ends the machine (with
/// QEMU's -no-reboot) instead of hanging it.
pub const BASE_CMDLINE: &str = "console=ttyS0 quiet panic=-1";

/// What QEMU to run and how; `spawn` or `run` starts it.
pub struct Machine {
    program: String,
    args: Vec<OsString>,
    cmdline: String,
    timeout: Duration,
}

impl Machine {
    /// Any QEMU system emulator with its machine arguments; `kernel` and
    /// `initrd` are added with -kernel and -initrd.
    pub fn new(program: &str, machine_args: &[&str], kernel: &Path, initrd: &Path) -> Machine {
        let mut args: Vec<OsString> = machine_args.iter().map(OsString::from).collect();
        for arg in [
            "-nographic",
            "-nodefaults",
            "-no-reboot",
            "-serial",
            "stdio",
        ] {
            args.push(arg.into());
        }
        args.extend([
            "-kernel".into(),
            kernel.into(),
            "-initrd".into(),
            initrd.into(),
        ]);
        Machine {
            program: program.to_owned(),
            args,
            cmdline: BASE_CMDLINE.to_owned(),
            timeout: Duration::from_secs(60),
        }
    }

    /// x86_64 microvm (virtio-mmio version 2 devices, described by ACPI)
    /// with 256 MiB of shared memfd memory, as vhost-user backends need,
    /// booting Debian's PVH vmlinux. The kernel is told the TSC frequency
    /// (see tsc.rs: without it an early boot hang is common).
    ///
    /// QEMU's virtio-mmio offers a queue size of 1024 whatever the device's
    /// queue-size property says, and Linux takes it: a vhost-user backend
    /// must accept 1024-entry rings here.
    pub fn microvm(kernel: &Kernel, initrd: &Path) -> Machine {
        let args = [
            "-accel",
            "tcg",
            "-M",
            "microvm,memory-backend=mem",
            "-global",
            "virtio-mmio.force-legacy=false",
            "-object",
            "memory-backend-memfd,id=mem,size=256M,share=on",
            "-m",
            "256M",
        ];
        Machine::new("qemu-system-x86_64", &args, &kernel.vmlinux(), initrd)
            .cmdline(&tsc::cmdline())
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Machine {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Machine {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends to the kernel command line.
    pub fn cmdline(mut self, extra: &str) -> Machine {
        self.cmdline.push(' ');
        self.cmdline.push_str(extra);
        self
    }

    /// How long the machine may run (from its start, not from getting the
    /// lock) before its process group is killed.
    pub fn timeout(mut self, limit: Duration) -> Machine {
        self.timeout = limit;
        self
    }

    /// Waits for the machine lock, then starts QEMU.
    pub fn spawn(self) -> Running {
        let lock = MachineLock::acquire().expect("emulated-machine lock");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .arg("-append")
            .arg(&self.cmdline)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn(&self.program, &mut cmd).unwrap_or_else(|e| {
            panic!("{e} (scripts/test.sh installs qemu-system-x86)");
        });
        let started = Instant::now();
        let (tx, lines) = mpsc::channel();
        let child = group.child_mut();
        forward(
            child.stdout.take().expect("stdout"),
            Stream::Serial,
            tx.clone(),
        );
        forward(child.stderr.take().expect("stderr"), Stream::Stderr, tx);
        Running {
            group,
            lines,
            started,
            deadline: started + self.timeout,
            timed_out: false,
            log: Log::default(),
            _lock: lock,
        }
    }

    /// Runs the machine to its end (or its timeout).
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Serial,
    Stderr,
}

fn forward(pipe: impl Read + Send + 'static, stream: Stream, tx: mpsc::Sender<(Stream, String)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if tx.send((stream, text)).is_err() {
                break;
            }
        }
    });
}

#[derive(Default, Clone)]
struct Log {
    serial: String,
    stderr: String,
    marks: Vec<Mark>,
}

/// A machine that is running.
pub struct Running {
    group: Group,
    lines: Receiver<(Stream, String)>,
    started: Instant,
    deadline: Instant,
    timed_out: bool,
    log: Log,
    _lock: MachineLock,
}

impl Running {
    /// Reads output until mark `name` arrives (returns it) or the machine
    /// ends or times out (returns None; `wait` then tells how it ended).
    pub fn wait_for_mark(&mut self, name: &str) -> Option<Mark> {
        let seen = self.log.marks.len();
        while self.read_one() {
            if let Some(mark) = self.log.marks[seen..].iter().find(|m| m.name == name) {
                return Some(mark.clone());
            }
        }
        None
    }

    /// Runs the machine to its end, or kills it at the deadline.
    pub fn wait(mut self) -> Outcome {
        while self.read_one() {}
        let status = self.group.kill().ok();
        Outcome {
            status: if self.timed_out { None } else { status },
            elapsed: self.started.elapsed(),
            log: std::mem::take(&mut self.log),
        }
    }

    /// Takes one line; false once both pipes closed or the deadline passed.
    fn read_one(&mut self) -> bool {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok((Stream::Serial, line)) => {
                if let Some(mark) = marks::parse(&line, self.started.elapsed()) {
                    self.log.marks.push(mark);
                }
                self.log.serial.push_str(&line);
                self.log.serial.push('\n');
                true
            }
            Ok((Stream::Stderr, line)) => {
                self.log.stderr.push_str(&line);
                self.log.stderr.push('\n');
                true
            }
            Err(RecvTimeoutError::Timeout) => {
                self.timed_out = true;
                false
            }
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }
}

/// How a machine ended and what it printed.
pub struct Outcome {
    /// QEMU's exit status; None if it was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    log: Log,
}

impl Outcome {
    pub fn serial(&self) -> &str {
        &self.log.serial
    }

    pub fn marks(&self) -> &[Mark] {
        &self.log.marks
    }

    /// The first mark called `name`.
    pub fn mark(&self, name: &str) -> Option<&Mark> {
        self.log.marks.iter().find(|m| m.name == name)
    }

    /// The value of mark `name`; panics with the whole report if absent.
    pub fn expect_mark(&self, name: &str) -> &str {
        match self.mark(name) {
            Some(mark) => &mark.value,
            None => panic!("no mark {name:?}\n{}", self.report()),
        }
    }

    /// Asserts that /init's script ended with status 0 and QEMU exited 0.
    pub fn expect_clean_exit(&self) {
        assert_eq!(
            self.expect_mark("exit"),
            "0",
            "guest script failed\n{}",
            self.report()
        );
        assert!(
            self.status.is_some_and(|s| s.success()),
            "QEMU did not exit cleanly\n{}",
            self.report()
        );
    }

    /// Status, time, serial output and QEMU's stderr, for failure messages.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at the timeout".to_owned(),
        };
        let _ = writeln!(out, "machine: {status} after {:.1?}", self.elapsed);
        let _ = writeln!(
            out,
            "--- serial\n{}--- qemu stderr\n{}---",
            self.log.serial, self.log.stderr
        );
        out
    }
}
