//! The command line (argh).

use argh::FromArgs;
use jail::seccomp::Mode as SeccompMode;
use protocol::device::DeviceKind;
use std::time::Duration;
use vmm::policy::{FaultAction, RestartPolicy};

fn seccomp_mode(value: &str) -> Result<SeccompMode, String> {
    match value {
        "enforce" => Ok(SeccompMode::Enforce),
        "log" => Ok(SeccompMode::Log),
        _ => Err(format!("--seccomp {value:?}: expected enforce or log")),
    }
}

/// cordon: run untrusted code (WebAssembly modules and unikernels now;
/// containers and Linux guests later) in KVM micro-VMs whose parts run as
/// separate, jailed processes.
#[derive(FromArgs, Debug)]
pub struct Cordon {
    #[argh(subcommand)]
    pub command: Command,
}

// Parsed once per process; boxing `Run` would cost argh's derive for
// nothing.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Run(Run),
    Check(Check),
    Device(Device),
}

/// Run IMAGE in a new micro-VM and exit with its status: a WebAssembly
/// module (a WASI preview1 command, run by cordon's embedded Wasm runtime;
/// see the README's WASI table) or an x86_64 ELF unikernel following Guest
/// ABI v1 (docs/guest-abi.md).
/// Causes of cordon's own (bad image, vCPU fault, timeout, ...) exit with the
/// codes in the README and one stderr line saying why.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct Run {
    /// guest memory in MiB (default 64; at least 2, at most the host's memory)
    #[argh(option, default = "vmm::config::DEFAULT_MEM_MIB")]
    pub mem: u64,
    /// number of vCPUs, each a thread (default 1)
    #[argh(option, default = "1")]
    pub cpus: u32,
    /// stop the sandbox after SECS seconds (fractions allowed); exit code 124
    #[argh(option)]
    pub timeout: Option<f64>,
    /// an environment entry KEY=VALUE for the guest (repeatable); nothing
    /// from cordon's own environment reaches the guest
    #[argh(option)]
    pub env: Vec<String>,
    /// bytes the guest may write to the debug console (port 0xE9) before the
    /// sandbox is stopped with exit code 121 (default 1048576)
    #[argh(option, default = "vmm::config::DEFAULT_CONSOLE_BUDGET")]
    pub console_budget: u64,
    /// attach a virtio-blk disk on the raw image PATH, served by its own
    /// device process; append ",ro" for read-only (repeatable, in order)
    #[argh(option)]
    pub disk: Vec<String>,
    /// attach a virtio-rng device (entropy from the host's getrandom)
    #[argh(switch)]
    pub rng: bool,
    /// attach two virtio consoles, served by one device process: console 0
    /// carries the guest's stdout and cordon's stdin, console 1 the guest's
    /// stderr (the debug port 0xE9 works either way)
    #[argh(switch)]
    pub console: bool,
    /// attach a device served by a vhost-user backend cordon does not run,
    /// as KIND:SOCKET with KIND console, block or rng (repeatable); e.g.
    /// block:/run/qsd.sock for qemu-storage-daemon's vhost-user-blk export
    #[argh(option)]
    pub vhost_user: Vec<String>,
    /// cgroup memory limit of the whole sandbox in MiB (default: --mem plus
    /// 64 MiB plus --mem/32, for the processes' own memory)
    #[argh(option)]
    pub memory_limit: Option<u64>,
    /// cgroup CPU limit of the whole sandbox in CPUs, fractions allowed
    /// (default: --cpus)
    #[argh(option)]
    pub cpu_limit: Option<f64>,
    /// cgroup limit on the sandbox's processes and threads (default: 64
    /// plus --cpus)
    #[argh(option)]
    pub pids_limit: Option<u64>,
    /// what a forbidden system call does: enforce (default: the process is
    /// stopped and the call reported, exit code 159) or log (for finding a
    /// missing rule: the call runs and the kernel logs it, see `dmesg`;
    /// never in production)
    #[argh(option, default = "SeccompMode::Enforce", from_str_fn(seccomp_mode))]
    pub seccomp: SeccompMode,
    /// a WebAssembly module is stopped with exit code 114 after burning N
    /// units of fuel (about one per instruction; deterministic); N >= 1
    #[argh(option)]
    pub fuel: Option<u64>,
    /// refuse a WebAssembly module that imports WASI functions cordon does
    /// not implement (exit 111), instead of their returning ENOSYS
    #[argh(switch)]
    pub strict_wasi: bool,
    /// what a vCPU fault (triple fault, failed entry, emulation failure)
    /// or the vm process's death does: stop (default; exit code 120 for a
    /// fault), reset-vcpu (reload the image and restart the vCPU at its
    /// entry; one-vCPU sandboxes, others reboot) or reboot (fresh vm and
    /// device processes on fresh memory); the guest sees its boot counter
    #[argh(option, default = "FaultAction::Stop")]
    pub on_vcpu_fault: FaultAction,
    /// restarts allowed within --restart-window; the fault after them
    /// stops the sandbox (default 3)
    #[argh(option, default = "vmm::policy::DEFAULT_MAX_RESTARTS")]
    pub max_restarts: u32,
    /// the window of --max-restarts in seconds, fractions allowed (default
    /// 60)
    #[argh(option)]
    pub restart_window: Option<f64>,
    /// write one JSON object per line to FILE for each event: the vm
    /// process's events, each fault with the action taken (sandbox, vCPU or
    /// process, cause, pc, action, restarts), a seccomp violation (process,
    /// syscall number, name, arch) and the end (exit status, cause, reason)
    #[argh(option)]
    pub events: Option<std::path::PathBuf>,
    /// TESTING ONLY: enter the first boot with CS.D set beside CS.L, a
    /// state VMX and SVM refuse to enter (KVM_EXIT_FAIL_ENTRY; kvm_pvm
    /// runs it), so tests can fault a vCPU that way; restarts enter
    /// correctly
    #[argh(switch, hidden_help)]
    pub test_bad_entry_state: bool,
    /// DEBUGGING ONLY: start the vm and device processes without their jail
    /// (no namespaces, cgroup, Landlock, seccomp, ...); warns on every run
    #[argh(switch)]
    pub no_jail: bool,
    /// log level: error, warn (default), info, debug or trace
    #[argh(option)]
    pub log_level: Option<log::LevelFilter>,
    /// more logging (-v info, -vv debug, -vvv trace)
    #[argh(switch, short = 'v')]
    pub verbose: u8,
    /// the module or image to run, recognised by its content
    #[argh(positional)]
    pub image: std::path::PathBuf,
    /// arguments for the guest or module (after `--`); it sees the file's
    /// name as argv[0]
    #[argh(positional, greedy)]
    pub args: Vec<String>,
}

/// Report what this host offers (KVM kind and capabilities, which guest kinds
/// can run, Landlock, seccomp, user namespaces); exit 69 if cordon cannot run
/// guests here.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct Check {}

/// Serve one vhost-user device on a unix socket, for any frontend (QEMU,
/// cloud-hypervisor, cordon): binds the socket (and opens the image) first,
/// serves one frontend at a time and the next after a disconnect.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "device")]
pub struct Device {
    #[argh(subcommand)]
    pub kind: DeviceKindCommand,
    /// log level: error, warn (default), info, debug or trace
    #[argh(option)]
    pub log_level: Option<log::LevelFilter>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum DeviceKindCommand {
    Console(ConsoleDevice),
    Block(BlockDevice),
    Rng(RngDevice),
}

/// virtio-console: the guest's output to this process's stdout, this
/// process's stdin to the guest.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "console")]
pub struct ConsoleDevice {
    /// the unix socket to listen on
    #[argh(option)]
    pub socket: std::path::PathBuf,
}

/// virtio-blk on a raw image file.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "block")]
pub struct BlockDevice {
    /// the unix socket to listen on
    #[argh(option)]
    pub socket: std::path::PathBuf,
    /// the raw disk image
    #[argh(option)]
    pub image: std::path::PathBuf,
    /// refuse writes (VIRTIO_BLK_F_RO; writes fail with VIRTIO_BLK_S_IOERR)
    #[argh(switch)]
    pub read_only: bool,
}

/// virtio-rng from the host's getrandom.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rng")]
pub struct RngDevice {
    /// the unix socket to listen on
    #[argh(option)]
    pub socket: std::path::PathBuf,
}

/// The arguments with `-vv` and `-vvv` spelled out as `-v -v (-v)`, which
/// is what argh counts; nothing after `--` (the guest's) is touched.
pub fn expand_verbose(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut guest = false;
    for arg in args {
        guest |= arg == "--";
        let vs = arg
            .strip_prefix('-')
            .filter(|v| v.len() > 1 && v.bytes().all(|b| b == b'v'));
        match vs {
            Some(vs) if !guest => out.extend(vs.bytes().map(|_| "-v".to_string())),
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// A `--vhost-user KIND:SOCKET` value.
pub fn parse_vhost_user(value: &str) -> Result<(DeviceKind, std::path::PathBuf), String> {
    let (kind, path) = value
        .split_once(':')
        .ok_or_else(|| format!("--vhost-user {value:?} is not KIND:SOCKET"))?;
    let kind = [DeviceKind::Console, DeviceKind::Block, DeviceKind::Rng]
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| format!("--vhost-user kind {kind:?} is not console, block or rng"))?;
    Ok((kind, path.into()))
}

/// A `--disk PATH[,ro]` value.
pub fn parse_disk(value: &str) -> vmm::supervisor::DiskSpec {
    match value.strip_suffix(",ro") {
        Some(path) => vmm::supervisor::DiskSpec {
            path: path.into(),
            read_only: true,
        },
        None => vmm::supervisor::DiskSpec {
            path: value.into(),
            read_only: false,
        },
    }
}

impl Run {
    /// The restart policy from --on-vcpu-fault, --max-restarts and
    /// --restart-window.
    pub fn restart_policy(&self) -> Result<RestartPolicy, String> {
        let window = match self.restart_window {
            None => Duration::from_secs(vmm::policy::DEFAULT_RESTART_WINDOW_SECS),
            Some(secs) => Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|w| !w.is_zero())
                .ok_or_else(|| {
                    format!("--restart-window {secs} is not a positive number of seconds")
                })?,
        };
        Ok(RestartPolicy {
            on_vcpu_fault: self.on_vcpu_fault,
            max_restarts: self.max_restarts,
            window,
        })
    }

    /// The log level from --log-level and -v.
    pub fn level(&self) -> log::LevelFilter {
        use log::LevelFilter::*;
        self.log_level.unwrap_or(match self.verbose {
            0 => Warn,
            1 => Info,
            2 => Debug,
            _ => Trace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn repeated_verbose_flags_are_spelled_out_before_the_guests_args() {
        assert_eq!(
            expand_verbose(&strings(&["run", "-vvv", "img", "--", "-vv"])),
            strings(&["run", "-v", "-v", "-v", "img", "--", "-vv"])
        );
        assert_eq!(
            expand_verbose(&strings(&["-v", "-x"])),
            strings(&["-v", "-x"])
        );
        assert_eq!(
            expand_verbose(&strings(&["-", "--v"])),
            strings(&["-", "--v"])
        );
    }
}
