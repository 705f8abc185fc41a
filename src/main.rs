//! The `cordon` binary: the CLI over the `vmm` crate.
//!
//! `cordon vm` is not a user command: it is how the supervisor re-executes
//! this binary as a vm process (see `vmm::spawn`).

mod cli;
mod device_role;
mod logger;

use std::process::ExitCode;
use std::time::Duration;

use vmm::exit::ExitCause;
use vmm::supervisor::{self, DeviceRequest, JailRequest, LimitOverrides, RunRequest};

/// The Wasm runtime (`guest-images/wasm`), embedded so that `cordon run
/// app.wasm` needs no other file.
const WASM_RUNTIME: &[u8] = include_bytes!(concat!(env!("CORDON_GUEST_DIR"), "/wasm"));

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(role) = argv
        .get(1)
        .and_then(|arg| vmm::spawn::Role::ALL.into_iter().find(|r| r.arg() == arg))
    {
        run_role(role, &argv[2..]);
    }
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let parsed =
        <cli::Cordon as argh::FromArgs>::from_args(&["cordon"], strs.get(1..).unwrap_or(&[]));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(early) => {
            return if early.status.is_ok() {
                print!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("{}", early.output.trim_end());
                eprintln!("Run `cordon help` or `cordon run --help` for usage.");
                ExitCode::from(ExitCause::Usage.code())
            };
        }
    };
    match cli.command {
        cli::Command::Run(run) => run_sandbox(&run),
        cli::Command::Check(_) => check(),
        cli::Command::Device(device) => {
            logger::init("device", device.log_level.unwrap_or(log::LevelFilter::Warn));
            device_role::standalone(&device)
        }
    }
}

/// A child process started by the spawn helper: `cordon vm KEPT MODE`,
/// `cordon device-block KEPT MODE`, ... Not user commands. Its jail comes
/// first, before any thread or allocation of note.
fn run_role(role: vmm::spawn::Role, args: &[String]) -> ! {
    // SAFETY: fstat only writes into `st`, which we own.
    let is_child = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(vmm::spawn::CONTROL_FD, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    };
    let parsed = match args {
        [kept, mode] => kept.parse().ok().zip(vmm::spawn::ChildMode::parse(mode)),
        _ => None,
    };
    let (Some((kept, mode)), true) = (parsed, is_child) else {
        eprintln!(
            "cordon: `cordon {}` is started by `cordon run`, not by hand",
            role.arg()
        );
        std::process::exit(i32::from(ExitCause::Usage.code()));
    };
    if let Err(e) = vmm::spawn::child::enter_jail(role, kept, mode) {
        eprintln!(
            "cordon: {}: cannot enter the jail: {}",
            role.arg(),
            vmm::error_chain(&e)
        );
        std::process::exit(i32::from(ExitCause::HostUnsupported.code()));
    }
    logger::init(role.arg(), log::LevelFilter::Warn);
    match role {
        vmm::spawn::Role::Vm => vmm::vm::main(mode),
        vmm::spawn::Role::Device(kind) => device_role::spawned(kind),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("cordon: {message}");
    ExitCode::from(ExitCause::Usage.code())
}

fn run_sandbox(run: &cli::Run) -> ExitCode {
    logger::init("supervisor", run.level());
    let timeout = match run.timeout {
        None => None,
        Some(secs) if secs.is_finite() && secs > 0.0 && secs <= 1e9 => {
            Some(Duration::from_secs_f64(secs))
        }
        Some(secs) => {
            return usage(&format!(
                "--timeout {secs} is not a positive number of seconds"
            ))
        }
    };
    let external = match run
        .vhost_user
        .iter()
        .map(|v| cli::parse_vhost_user(v))
        .collect()
    {
        Ok(external) => external,
        Err(message) => return usage(&message),
    };
    if run.no_jail {
        eprintln!("cordon: WARNING: --no-jail: the vm and device processes run without their jail; for debugging only, never with untrusted guests");
    }
    let jail = (!run.no_jail).then_some(JailRequest {
        seccomp: run.seccomp,
        limits: LimitOverrides {
            memory_mib: run.memory_limit,
            cpus: run.cpu_limit,
            pids: run.pids_limit,
        },
    });
    let req = RunRequest {
        image: run.image.clone(),
        mem_mib: run.mem,
        cpus: run.cpus,
        timeout,
        args: run.args.clone(),
        env: run.env.clone(),
        console_budget: run.console_budget,
        log_level: run.level(),
        devices: DeviceRequest {
            console: run.console,
            disks: run.disk.iter().map(|d| cli::parse_disk(d)).collect(),
            rng: run.rng,
            external,
        },
        jail,
        events: run.events.clone(),
        fuel: run.fuel,
        strict_wasi: run.strict_wasi,
        wasm_runtime: WASM_RUNTIME,
    };
    match supervisor::run(&req) {
        Ok(outcome) => {
            if let Some(reason) = &outcome.reason {
                eprintln!("cordon: {reason}");
            }
            ExitCode::from(outcome.exit.code())
        }
        Err(e) => {
            eprintln!("cordon: {}", vmm::error_chain(&e));
            ExitCode::from(e.cause().code())
        }
    }
}

fn check() -> ExitCode {
    let report = vmm::check::probe();
    print!("{report}");
    if report.can_run_guests() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(ExitCause::HostUnsupported.code())
    }
}
