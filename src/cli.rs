//! The command line (argh).

use argh::FromArgs;

/// cordon: run untrusted code (unikernels now; Wasm, containers and Linux
/// guests later) in KVM micro-VMs whose parts run as separate processes.
#[derive(FromArgs, Debug)]
pub struct Cordon {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Run(Run),
    Check(Check),
}

/// Boot IMAGE (an x86_64 ELF unikernel following Guest ABI v1, see
/// docs/guest-abi.md) in a new micro-VM and exit with the guest's status.
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
    /// log level: error, warn (default), info, debug or trace
    #[argh(option)]
    pub log_level: Option<log::LevelFilter>,
    /// more logging (-v info, -vv debug, -vvv trace)
    #[argh(switch, short = 'v')]
    pub verbose: u8,
    /// the image to boot, recognised by its content
    #[argh(positional)]
    pub image: std::path::PathBuf,
    /// arguments for the guest (after `--`); the guest sees the image's file
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

impl Run {
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
