//! The supervisor: validates a run request, opens every resource the vm
//! process needs (it never parses guest data), spawns the vm process through
//! the spawn helper and turns its events into the sandbox's exit status.

mod devices;
mod event_log;
mod resources;
mod restart;
mod signals;
mod wasm_imports;
mod watch;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::boot::bootinfo::{self, BootInfoError};
use crate::config::{DeviceSpec, VmConfig, VmFds, MAX_VCPUS, MIN_MEM_MIB};
use crate::control::{self, ToVm};
use crate::exit::{ExitCause, SandboxExit};
use crate::spawn::{self, JailSetupError, Role, SandboxJail, SpawnError, FIRST_KEPT_FD};

pub use devices::{DeviceRequest, DeviceSetupError, DiskSpec};
pub use event_log::{FaultRecord, ReportedViolation, SandboxEvent};
pub use resources::ResourceError;

/// What `cordon run` asks for.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub image: PathBuf,
    pub mem_mib: u64,
    pub cpus: u32,
    pub timeout: Option<Duration>,
    /// The guest's argv after argv[0] (which is the image's file name).
    pub args: Vec<String>,
    /// "KEY=VALUE" pairs.
    pub env: Vec<String>,
    pub console_budget: u64,
    pub log_level: log::LevelFilter,
    pub devices: DeviceRequest,
    /// The jail, or None for `--no-jail`.
    pub jail: Option<JailRequest>,
    /// `--events FILE`.
    pub events: Option<PathBuf>,
    /// The sandbox's stdin, stdout and stderr (for the console device and
    /// the vm process's debug console) instead of this process's; the fds
    /// must stay open until `run` returns.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// argv[0] for the guest instead of the image's file name.
    pub argv0: Option<String>,
    /// Run inside another program (the embedding API): the calling
    /// process keeps its SIGINT and SIGTERM and gets no seccomp filter of
    /// cordon's; the sandbox's own processes are jailed all the same.
    pub embedded: bool,
    /// `--strict-wasi`: refuse a module that imports WASI functions the
    /// runtime does not implement (instead of their returning ENOSYS).
    pub strict_wasi: bool,
    /// `--fuel N`: a Wasm module is stopped after burning N units of fuel
    /// (about one per instruction), deterministically.
    pub fuel: Option<u64>,
    /// The Wasm runtime's ELF (`guest-images/wasm`), which runs an image
    /// that is a WebAssembly module; empty if this build has none.
    pub wasm_runtime: &'static [u8],
    /// `--on-vcpu-fault`, `--max-restarts`, `--restart-window`.
    pub restart: crate::policy::RestartPolicy,
    /// Testing only: the first boot's entry state is one hardware KVM
    /// refuses to enter (see `VmConfig::test_bad_entry_state`).
    pub test_bad_entry_state: bool,
}

/// How the sandbox is jailed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JailRequest {
    pub seccomp: jail::seccomp::Mode,
    /// Overrides of the cgroup limits `--mem` and `--cpus` imply.
    pub limits: LimitOverrides,
}

/// `--memory-limit`, `--cpu-limit`, `--pids-limit`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LimitOverrides {
    pub memory_mib: Option<u64>,
    /// CPUs' worth of time, e.g. 0.5.
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
}

impl LimitOverrides {
    /// The sandbox's cgroup limits: derived from `--mem` and `--cpus`
    /// (`jail::cgroup::Limits::for_sandbox`), then overridden.
    pub fn limits(&self, mem_mib: u64, cpus: u32) -> jail::cgroup::Limits {
        let mut limits = jail::cgroup::Limits::for_sandbox(mem_mib, cpus);
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib << 20;
        }
        if let Some(cpus) = self.cpus {
            let quota = cpus * jail::cgroup::CPU_PERIOD_US as f64;
            limits.cpu_quota_us = Some((quota as u64).max(1000));
        }
        if let Some(pids) = self.pids {
            limits.pids_max = pids;
        }
        limits
    }
}

/// How a sandbox ended and, when it was cordon's doing, why.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub exit: SandboxExit,
    /// One line for stderr; always set when `exit` is cordon's cause.
    pub reason: Option<String>,
    /// Set when a process was stopped by its seccomp filter.
    pub violation: Option<ReportedViolation>,
    /// What happened on the way, in order (what `--events` writes, but
    /// the end): the vm process's events, faults with the action taken, a
    /// violation. At most the first 1024.
    pub events: Vec<SandboxEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("--mem {mib} MiB is outside {min}..={max} MiB (the host has {max} MiB)")]
    Memory { mib: u64, min: u64, max: u64 },
    #[error("--cpus {cpus} is outside 1..={max}")]
    Cpus { cpus: u32, max: u32 },
    #[error("--env {0:?} is not KEY=VALUE with a non-empty KEY")]
    Env(String),
    #[error("--fuel 0 would stop the module before it starts: give at least 1")]
    Fuel,
    #[error("an argument or environment entry contains a NUL byte")]
    Nul,
    #[error("arguments do not fit")]
    BootInfo(#[from] BootInfoError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error(transparent)]
    Devices(#[from] DeviceSetupError),
    #[error("cannot start the vm process")]
    Spawn(#[from] SpawnError),
    #[error("cannot set up the jail (run `cordon check`; --no-jail is for debugging only)")]
    Jail(#[from] JailSetupError),
    #[error(
        "--strict-wasi: the module imports WASI functions the runtime does not implement: {0}"
    )]
    UnsupportedWasi(String),
    #[error("this cordon was built without the Wasm runtime")]
    NoWasmRuntime,
    #[error("cannot create the --events file {path}")]
    Events {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot apply the supervisor's own seccomp filter")]
    Seccomp(#[source] jail::seccomp::SeccompError),
    #[error("KVM will not report its CPUID")]
    Cpuid(#[source] kvm_ioctls::Error),
    #[error("cannot set up signal handling")]
    Signals(#[source] std::io::Error),
    #[error("cannot talk to the vm process")]
    Control(#[from] crate::control::ControlError),
}

impl SupervisorError {
    /// The exit cause for this error.
    pub fn cause(&self) -> ExitCause {
        match self {
            SupervisorError::Memory { .. }
            | SupervisorError::Cpus { .. }
            | SupervisorError::Env(_)
            | SupervisorError::Nul
            | SupervisorError::Fuel
            | SupervisorError::Events { .. }
            | SupervisorError::BootInfo(_) => ExitCause::Usage,
            SupervisorError::Resource(e) => e.cause(),
            SupervisorError::UnsupportedWasi(_) => ExitCause::WasmLink,
            SupervisorError::Devices(DeviceSetupError::Disk { .. }) => ExitCause::ImageUnreadable,
            SupervisorError::Devices(_) => ExitCause::DeviceFailed,
            SupervisorError::Cpuid(_)
            | SupervisorError::Jail(_)
            | SupervisorError::Seccomp(_)
            | SupervisorError::NoWasmRuntime => ExitCause::HostUnsupported,
            _ => ExitCause::Internal,
        }
    }
}

fn validate(req: &RunRequest, host_mib: u64, max_cpus: u32) -> Result<(), SupervisorError> {
    if req.mem_mib < MIN_MEM_MIB || req.mem_mib > host_mib {
        return Err(SupervisorError::Memory {
            mib: req.mem_mib,
            min: MIN_MEM_MIB,
            max: host_mib,
        });
    }
    if req.fuel == Some(0) {
        return Err(SupervisorError::Fuel);
    }
    if req.cpus == 0 || req.cpus > max_cpus {
        return Err(SupervisorError::Cpus {
            cpus: req.cpus,
            max: max_cpus,
        });
    }
    if let Some(bad) = req
        .env
        .iter()
        .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(SupervisorError::Env(bad.clone()));
    }
    if req.args.iter().chain(&req.env).any(|s| s.contains('\0')) {
        return Err(SupervisorError::Nul);
    }
    Ok(())
}

/// The guest's argv: the image's file name (or `argv0`), then the
/// request's args.
fn guest_argv(req: &RunRequest) -> Vec<String> {
    let name = req.argv0.clone().unwrap_or_else(|| {
        req.image.file_name().map_or_else(
            || req.image.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    std::iter::once(name)
        .chain(req.args.iter().cloned())
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn supported_cpuid(
    kvm: &kvm_ioctls::Kvm,
) -> Result<Vec<crate::config::CpuidEntry>, SupervisorError> {
    crate::arch::x86_64::vcpu::supported_cpuid(kvm).map_err(SupervisorError::Cpuid)
}

#[cfg(not(target_arch = "x86_64"))]
fn supported_cpuid(_: &kvm_ioctls::Kvm) -> Result<Vec<crate::config::CpuidEntry>, SupervisorError> {
    Ok(Vec::new())
}

/// The devices a Wasm module gets: the consoles if it imports WASI's
/// stdio calls, the rng if it imports `random_get`, besides what was asked
/// for. A module whose imports cannot be read (or that is larger than guest
/// memory) gets both; the runtime then says what is wrong with it. With
/// `--strict-wasi`, a module that imports a WASI function the runtime does
/// not implement is refused here.
fn wasm_devices(
    module: &std::fs::File,
    req: &RunRequest,
) -> Result<DeviceRequest, SupervisorError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = module.take(req.mem_mib << 20).read_to_end(&mut bytes);
    let readable = read
        .ok()
        .and_then(|_| wasm_imports::wasi_functions(&bytes).ok());
    if req.strict_wasi {
        let names = readable.as_deref().unwrap_or_default();
        let unsupported: Vec<String> = names
            .iter()
            .filter(|n| {
                !guest_abi::WASI_SUPPORTED
                    .iter()
                    .any(|s| s.as_bytes() == **n)
            })
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        if !unsupported.is_empty() {
            return Err(SupervisorError::UnsupportedWasi(unsupported.join(", ")));
        }
    }
    let needs = readable.map_or(
        wasm_imports::Needs {
            console: true,
            rng: true,
        },
        |names| wasm_imports::Needs::of(&names),
    );
    Ok(DeviceRequest {
        console: req.devices.console || needs.console,
        rng: req.devices.rng || needs.rng,
        ..req.devices.clone()
    })
}

/// The supervisor's own filter, once every process is started: what is
/// left to do is to watch, reap, clean up and (later) respawn. A violation
/// is printed on stderr and ends cordon with exit code 159.
fn jail_self(mode: jail::seccomp::Mode) -> Result<(), SupervisorError> {
    jail::seccomp::install_sigsys_printer(libc::STDERR_FILENO)
        .and_then(|()| jail::seccomp::apply(jail::seccomp::Role::Supervisor, mode))
        .map_err(SupervisorError::Seccomp)
}

/// Runs one sandbox to its end.
pub fn run(req: &RunRequest) -> Result<Outcome, SupervisorError> {
    let host = resources::host()?;
    validate(req, host.host_mib, host.max_vcpus.min(MAX_VCPUS))?;
    let args = guest_argv(req);
    let mut events = event_log::EventLog::create(req.events.as_deref()).map_err(|source| {
        SupervisorError::Events {
            path: req.events.clone().unwrap_or_default(),
            source,
        }
    })?;
    // A module's image is the Wasm runtime, which the vm process takes
    // from its own executable (the same as this one).
    let (image, module) = match resources::open_image(&req.image)? {
        resources::Image::Elf(file) => (Some(file), None),
        resources::Image::Wasm(_) if req.wasm_runtime.is_empty() => {
            return Err(SupervisorError::NoWasmRuntime)
        }
        resources::Image::Wasm(file) => (None, Some(file)),
    };
    let devices_wanted = match &module {
        Some(file) => wasm_devices(file, req)?,
        None => req.devices.clone(),
    };
    bootinfo::check_size(&args, &req.env, devices_wanted.count())?;
    let exe = resources::own_executable()?;
    let signals = if req.embedded {
        signals::StopSignals::none()
    } else {
        signals::StopSignals::new().map_err(SupervisorError::Signals)?
    };
    let name = format!("sandbox-{}", std::process::id());
    let jail = match &req.jail {
        Some(j) => {
            let limits = j.limits.limits(req.mem_mib, req.cpus);
            Some(SandboxJail::create(&name, &limits, j.seccomp)?)
        }
        None => None,
    };
    let mut restarts = restart::Restarts::new(req.restart, req.cpus, name);
    let boot = Boot {
        req,
        host: &host,
        args: &args,
        exe: &exe,
        image: image.as_ref(),
        module: module.as_ref(),
        devices: &devices_wanted,
        jail: jail.as_ref(),
    };
    let mut cpuid = None;
    // `--timeout` is the whole sandbox's, reboots included.
    let deadline = req.timeout.map(|t| Instant::now() + t);
    // Each turn is one boot: the first, then one per reboot the policy
    // allows.
    let mut outcome = loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            let secs = req.timeout.map_or(0.0, |t| t.as_secs_f64());
            break watch::timed_out(format!("timeout after {secs} s, before a reboot"));
        }
        let started = boot.start(restarts.boot_counter(), left, &mut cpuid)?;
        let expect = watch::Expect {
            timeout: req.timeout,
            deadline,
            wasm: module.is_some(),
        };
        let respawn = |index| boot.restart_device(index);
        match watch::watch(
            started.vm,
            started.devices,
            &signals,
            expect,
            &mut events,
            &mut restarts,
            &respawn,
        ) {
            watch::Watched::Ended(outcome) => break outcome,
            watch::Watched::Reboot => log::info!("rebooting: boot {}", restarts.boot_counter()),
        }
    };
    outcome.events = events.end(&outcome);
    if let Some(Err(e)) = jail.map(SandboxJail::remove) {
        log::warn!("the sandbox's cgroup was left behind: {e}");
    }
    Ok(outcome)
}

/// What every boot of a sandbox starts from.
struct Boot<'a> {
    req: &'a RunRequest,
    host: &'a resources::Host,
    args: &'a [String],
    exe: &'a std::fs::File,
    image: Option<&'a std::fs::File>,
    module: Option<&'a std::fs::File>,
    devices: &'a DeviceRequest,
    jail: Option<&'a SandboxJail>,
}

/// The processes of one boot.
struct Started {
    vm: spawn::Child,
    devices: Vec<watch::WatchedDevice>,
}

impl Boot<'_> {
    /// Starts the device processes and a vm process on fresh guest memory
    /// and sends it the boot message with `boot_counter` and what is left
    /// of the sandbox's `timeout`. The first boot
    /// reads KVM's CPUID into `cpuid` and then jails the supervisor itself.
    fn start(
        &self,
        boot_counter: u64,
        timeout: Option<Duration>,
        cpuid: &mut Option<Vec<crate::config::CpuidEntry>>,
    ) -> Result<Started, SupervisorError> {
        let (req, host) = (self.req, self.host);
        let memory = resources::guest_memory(req.mem_mib << 20)?;
        let log_level = self.log_level();
        // Device processes first: they start while the vm process does.
        let running = devices::start(self.exe, self.devices, &log_level, self.jail, req.stdio)?;
        let external = devices::connect_external(self.devices)?;
        let vm_ends: Vec<_> = running
            .iter()
            .flat_map(|d| d.vm_ends.iter())
            .chain(&external)
            .collect();
        let mut keep = vec![host.kvm.as_fd(), memory.as_fd()];
        let image_fd = self.image.map(|f| {
            keep.push(f.as_fd());
            FIRST_KEPT_FD + keep.len() as i32 - 1
        });
        let module_fd = self.module.map(|f| {
            keep.push(f.as_fd());
            FIRST_KEPT_FD + keep.len() as i32 - 1
        });
        let first_socket = FIRST_KEPT_FD + keep.len() as i32;
        keep.extend(vm_ends.iter().map(|(_, _, end)| end.as_fd()));
        let mut child = spawn::spawn(self.exe, Role::Vm, &keep, self.jail, req.stdio)?;
        log::debug!("vm process started, pid {}", child.pid);
        let device_specs = vm_ends
            .iter()
            .enumerate()
            .map(|(i, (kind, name, _))| DeviceSpec {
                kind: *kind,
                name: name.clone(),
                socket_fd: first_socket + i as i32,
            })
            .collect();
        let cpuid = match cpuid {
            Some(c) => c.clone(),
            None => {
                // Read while the vm process is still starting (see
                // VmConfig::cpuid).
                let c = cpuid.insert(supported_cpuid(&host.system)?).clone();
                if let (Some(j), false) = (&req.jail, req.embedded) {
                    jail_self(j.seccomp)?;
                }
                c
            }
        };
        // The vm process has its own copy now.
        drop(memory);
        let config = VmConfig {
            log_level,
            mem_bytes: req.mem_mib << 20,
            vcpus: req.cpus,
            // At least 1 ms: 0 would read as "already passed" everywhere.
            timeout_ms: timeout.map(|t| (t.as_millis() as u64).max(1)),
            console_budget: req.console_budget,
            args: self.args.to_vec(),
            env: req.env.clone(),
            boot_counter,
            on_vcpu_fault: req.restart.on_vcpu_fault,
            test_bad_entry_state: req.test_bad_entry_state && boot_counter == 0,
            fuel: req.fuel.unwrap_or(0),
            fds: VmFds {
                kvm: FIRST_KEPT_FD,
                memory: FIRST_KEPT_FD + 1,
                image: image_fd,
                module: module_fd,
            },
            cpuid,
            devices: device_specs,
        };
        let boot = ToVm::Boot(Box::new(config));
        if let Err(e) = control::send(&mut child.control, &boot) {
            // It may have died already; the watch loop reports how.
            log::debug!("cannot send the boot message: {e}");
        }
        let mut first_slot = 0;
        let devices = running
            .into_iter()
            .map(|d| {
                let watched = watch::WatchedDevice {
                    name: d.name,
                    child: d.child,
                    first_slot,
                };
                first_slot += d.vm_ends.len();
                watched
            })
            .collect();
        Ok(Started { vm: child, devices })
    }

    /// The log level children get, as text.
    fn log_level(&self) -> String {
        self.req.log_level.to_string().to_lowercase()
    }

    /// Device process `index` started again (see `devices::restart`).
    fn restart_device(&self, index: usize) -> Result<devices::RunningDevice, DeviceSetupError> {
        devices::restart(
            self.exe,
            self.devices,
            &self.log_level(),
            self.jail,
            self.req.stdio,
            index,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RunRequest {
        RunRequest {
            image: PathBuf::from("/images/hello"),
            mem_mib: 64,
            cpus: 1,
            timeout: None,
            args: vec!["7".into()],
            env: vec!["K=V".into()],
            console_budget: 1 << 20,
            log_level: log::LevelFilter::Warn,
            devices: DeviceRequest::default(),
            jail: None,
            events: None,
            fuel: None,
            strict_wasi: false,
            argv0: None,
            embedded: false,
            stdio: None,
            wasm_runtime: &[],
            restart: Default::default(),
            test_bad_entry_state: false,
        }
    }

    #[test]
    fn validates_memory_cpus_and_env() {
        assert!(validate(&req(), 1024, 4).is_ok());
        let zero_mem = RunRequest {
            mem_mib: 0,
            ..req()
        };
        assert!(matches!(
            validate(&zero_mem, 1024, 4),
            Err(SupervisorError::Memory { .. })
        ));
        let huge_mem = RunRequest {
            mem_mib: 4096,
            ..req()
        };
        assert!(matches!(
            validate(&huge_mem, 1024, 4),
            Err(SupervisorError::Memory { .. })
        ));
        let no_cpus = RunRequest { cpus: 0, ..req() };
        assert!(matches!(
            validate(&no_cpus, 1024, 4),
            Err(SupervisorError::Cpus { .. })
        ));
        let many = RunRequest { cpus: 5, ..req() };
        assert!(matches!(
            validate(&many, 1024, 4),
            Err(SupervisorError::Cpus { .. })
        ));
        let bad_env = RunRequest {
            env: vec!["=x".into()],
            ..req()
        };
        assert!(matches!(
            validate(&bad_env, 1024, 4),
            Err(SupervisorError::Env(_))
        ));
        let no_eq = RunRequest {
            env: vec!["KEY".into()],
            ..req()
        };
        assert!(matches!(
            validate(&no_eq, 1024, 4),
            Err(SupervisorError::Env(_))
        ));
        for e in [zero_mem, many, bad_env] {
            let err = validate(&e, 1024, 4).unwrap_err();
            assert_eq!(err.cause(), ExitCause::Usage);
        }
    }

    #[test]
    fn argv0_is_the_image_file_name() {
        assert_eq!(
            guest_argv(&req()),
            vec!["hello".to_string(), "7".to_string()]
        );
    }
}
