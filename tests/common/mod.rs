//! Runs the real `cordon` binary against real KVM and checks how it ended.

#![allow(dead_code)]

pub mod blk;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any sandbox in these tests may take to be gone.
pub const GONE_WITHIN: Duration = Duration::from_secs(5);

pub fn cordon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
}

/// A scratch directory for one test: `cordon-test-<pid>-<name>` under the
/// system's temp dir, created if missing (test binaries are separate
/// processes, so names need only be unique within one file).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A guest built by build.rs into target/guests/.
pub fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CORDON_GUEST_DIR")).join(name);
    assert!(path.exists(), "guest {} was not built", path.display());
    path
}

/// What one `cordon run` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub vm_pid: Option<i32>,
    pub elapsed: Duration,
}

impl Run {
    /// cordon's one-line cause, if any.
    pub fn cause_line(&self) -> Option<&str> {
        self.stderr.lines().find(|l| l.starts_with("cordon: "))
    }

    /// Asserts the exit code and that the cause line contains `needle`.
    pub fn expect(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        let line = self
            .cause_line()
            .unwrap_or_else(|| panic!("no cause line in:\n{}", self.stderr));
        assert!(line.contains(needle), "{line:?} lacks {needle:?}");
        assert!(
            !self.stderr.contains("panicked"),
            "a panic:\n{}",
            self.stderr
        );
        // Every run is jailed: whatever the guest did, no process of the
        // sandbox may have stepped outside its seccomp policy.
        if code != 159 {
            assert!(
                !self.stderr.contains("seccomp violation"),
                "{}",
                self.stderr
            );
        }
    }
}

/// Waits for `child` at most `limit`; kills it and panics if it overstays.
/// Its piped stdout and stderr are read meanwhile: a long run (hundreds of
/// restarts at debug level) writes more than a pipe holds, and a child
/// blocked on a full pipe never ends.
pub fn wait_limited(mut child: Child, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let out = Output {
        status: status.unwrap_or_else(|| child.wait().expect("wait")),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    if status.is_none() {
        panic!(
            "cordon still running after {limit:?}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (out, elapsed)
}

/// The vm process pid from the supervisor's debug log.
pub fn vm_pid(stderr: &str) -> Option<i32> {
    stderr
        .lines()
        .find_map(|l| l.split("vm process started, pid ").nth(1))
        .and_then(|p| p.trim().parse().ok())
}

/// Whether `pid` is still a live process (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Runs `cordon run --log-level debug ARGS` and checks the sandbox is gone
/// within `GONE_WITHIN`.
pub fn run(args: &[&str]) -> Run {
    let child = cordon()
        .arg("run")
        .args(["--log-level", "debug"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cordon");
    let (out, elapsed) = wait_limited(child, GONE_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let vm_pid = vm_pid(&stderr);
    if let Some(pid) = vm_pid {
        assert!(!alive(pid), "vm process {pid} outlived cordon");
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        vm_pid,
        elapsed,
    }
}
