//! The `cordon` binary: the CLI over the `vmm` crate.
//!
//! `cordon vm` is not a user command: it is how the supervisor re-executes
//! this binary as a vm process (see `vmm::spawn`).

mod cli;
mod device_role;

use cordon::logger;

use std::process::ExitCode;
use std::time::Duration;

use vmm::exit::ExitCause;
use vmm::supervisor::{self, DeviceRequest, JailRequest, LimitOverrides, RunRequest};

fn main() -> ExitCode {
    cordon::serve_if_spawned();
    let argv: Vec<String> = cli::expand_verbose(&std::env::args().collect::<Vec<_>>());
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
    let restart = match run.restart_policy() {
        Ok(restart) => restart,
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
        argv0: None,
        embedded: false,
        stdio: None,
        wasm_runtime: cordon::WASM_RUNTIME,
        restart,
        test_bad_entry_state: run.test_bad_entry_state,
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
