//! The builder behind the embedding API: one sandbox, run to its end.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vmm::config::DEFAULT_CONSOLE_BUDGET;
use vmm::policy::RestartPolicy;
use vmm::supervisor::{self, DeviceRequest, JailRequest, Outcome, RunRequest, SupervisorError};

/// A sandbox to run: an image (an ELF unikernel or a WebAssembly module,
/// recognised by content), its arguments, environment and limits.
#[derive(Clone, Debug)]
pub struct Sandbox {
    req: RunRequest,
    /// The memfd holding the bytes of [`Sandbox::wasm_bytes`], open while
    /// the sandbox may run.
    _bytes: Option<Arc<OwnedFd>>,
    /// The handles of [`Sandbox::stdio`], open while the sandbox may run.
    _stdio: Option<Arc<[OwnedFd; 3]>>,
}

impl Sandbox {
    /// A sandbox for the image at `path`, with `cordon run`'s defaults:
    /// 64 MiB, one vCPU, no timeout, the whole jail.
    pub fn new(path: impl Into<PathBuf>) -> Sandbox {
        Sandbox {
            req: RunRequest {
                image: path.into(),
                mem_mib: vmm::config::DEFAULT_MEM_MIB,
                cpus: 1,
                timeout: None,
                args: Vec::new(),
                env: Vec::new(),
                console_budget: DEFAULT_CONSOLE_BUDGET,
                log_level: log::LevelFilter::Warn,
                devices: DeviceRequest::default(),
                jail: Some(JailRequest {
                    seccomp: jail::seccomp::Mode::Enforce,
                    limits: Default::default(),
                }),
                events: None,
                fuel: None,
                strict_wasi: false,
                argv0: None,
                embedded: true,
                stdio: None,
                wasm_runtime: crate::WASM_RUNTIME,
                restart: RestartPolicy::default(),
                test_bad_entry_state: false,
            },
            _bytes: None,
            _stdio: None,
        }
    }

    /// A sandbox for a WebAssembly module given as bytes; `name` is its
    /// `argv[0]`. The bytes are kept in a sealed memfd the supervisor opens
    /// like a file.
    pub fn wasm_bytes(name: &str, bytes: &[u8]) -> std::io::Result<Sandbox> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags.
        let raw = unsafe {
            libc::memfd_create(
                c"cordon-module".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: memfd_create succeeded; the fd is new and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut file = std::fs::File::from(fd.try_clone()?);
        file.write_all(bytes)?;
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on our own memfd.
        if unsafe { libc::fcntl(raw, libc::F_ADD_SEALS, seals) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let mut sandbox = Sandbox::new(path).argv0(name);
        sandbox._bytes = Some(Arc::new(fd));
        Ok(sandbox)
    }

    /// Appends one argument for the guest (after `argv[0]`).
    pub fn arg(mut self, arg: impl Into<String>) -> Sandbox {
        self.req.args.push(arg.into());
        self
    }

    /// Appends arguments for the guest.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Sandbox {
        self.req.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds KEY=VALUE to the guest's environment (which starts empty).
    pub fn env(mut self, key: &str, value: &str) -> Sandbox {
        self.req.env.push(format!("{key}={value}"));
        self
    }

    /// The guest's `argv[0]` (default: the image's file name).
    pub fn argv0(mut self, name: impl Into<String>) -> Sandbox {
        self.req.argv0 = Some(name.into());
        self
    }

    /// Guest memory in MiB.
    pub fn mem_mib(mut self, mib: u64) -> Sandbox {
        self.req.mem_mib = mib;
        self
    }

    /// vCPUs.
    pub fn cpus(mut self, cpus: u32) -> Sandbox {
        self.req.cpus = cpus;
        self
    }

    /// Stops the sandbox after `timeout` (exit cause `Timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Sandbox {
        self.req.timeout = Some(timeout);
        self
    }

    /// Stops a WebAssembly module after `fuel` units (deterministic).
    pub fn fuel(mut self, fuel: u64) -> Sandbox {
        self.req.fuel = Some(fuel);
        self
    }

    /// The fault policy (as `--on-vcpu-fault`, `--max-restarts`,
    /// `--restart-window`): what a vCPU fault or the vm process's death
    /// does, and how many restarts the sandbox gets. Default: stop.
    pub fn on_fault(mut self, policy: RestartPolicy) -> Sandbox {
        self.req.restart = policy;
        self
    }

    /// Refuses a module that imports WASI functions cordon lacks.
    pub fn strict_wasi(mut self) -> Sandbox {
        self.req.strict_wasi = true;
        self
    }

    /// Attaches the virtio consoles and rng for a unikernel (a Wasm module
    /// gets what its imports call for without asking).
    pub fn devices(mut self, console: bool, rng: bool) -> Sandbox {
        self.req.devices.console = console;
        self.req.devices.rng = rng;
        self
    }

    /// The sandbox's stdin, stdout and stderr (files, pipes, sockets)
    /// instead of this process's: the guest's console and, for a module,
    /// WASI fds 0-2; cordon's own log lines go to `stderr` too.
    pub fn stdio(
        mut self,
        stdin: impl Into<OwnedFd>,
        stdout: impl Into<OwnedFd>,
        stderr: impl Into<OwnedFd>,
    ) -> Sandbox {
        let fds = Arc::new([stdin.into(), stdout.into(), stderr.into()]);
        self.req.stdio = Some([0, 1, 2].map(|i| fds[i].as_raw_fd()));
        self._stdio = Some(fds);
        self
    }

    /// Writes the sandbox's events as JSON lines to `path` (as `--events`).
    pub fn events(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.req.events = Some(path.into());
        self
    }

    /// Runs the sandbox to its end: how it ended (the guest's status, or
    /// cordon's cause with its reason and any seccomp violation), or why it
    /// could not start. The calling process must have called
    /// [`crate::serve_if_spawned`] at the top of its `main`.
    pub fn run(self) -> Result<Outcome, SupervisorError> {
        supervisor::run(&self.req)
    }
}
