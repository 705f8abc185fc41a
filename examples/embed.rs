//! Embeds cordon: runs a WebAssembly module (default
//! `examples/hello.wasm`) in a jailed micro-VM from this program and
//! reports how it ended.
//!
//!     cargo run --release --example embed -- examples/hello.wasm
//!     cargo run --release --example embed -- --bytes examples/hello.wasm
//!
//! With `--bytes` the module is read into memory first and handed over as
//! bytes (`Sandbox::wasm_bytes`). With `--out FILE` the sandbox's stdout
//! goes to FILE instead of this program's (`Sandbox::stdio`). With
//! `--on-vcpu-fault ACTION` a faulting guest is restarted (at most twice)
//! as the fault policy says (`Sandbox::on_fault`). The events the sandbox
//! went through are printed on stderr.
//!
//! The sandbox's vm and console processes are re-executions of this very
//! binary: `serve_if_spawned` turns them into what they are.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    cordon::serve_if_spawned();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = take_option(&mut args, "--out");
    let policy = match take_option(&mut args, "--on-vcpu-fault").map(|a| a.parse()) {
        None => cordon::RestartPolicy::default(),
        Some(Ok(on_vcpu_fault)) => cordon::RestartPolicy {
            on_vcpu_fault,
            max_restarts: 2,
            ..cordon::RestartPolicy::default()
        },
        Some(Err(e)) => {
            eprintln!("embed: --on-vcpu-fault {e}");
            return ExitCode::from(64);
        }
    };
    let (bytes, module) = match args.as_slice() {
        [flag, path] if flag == "--bytes" => (true, path.clone()),
        [path] => (false, path.clone()),
        _ => (false, "examples/hello.wasm".to_string()),
    };
    let sandbox = if bytes {
        let read =
            std::fs::read(&module).and_then(|b| cordon::Sandbox::wasm_bytes("module.wasm", &b));
        match read {
            Ok(sandbox) => sandbox,
            Err(e) => {
                eprintln!("embed: cannot read {module}: {e}");
                return ExitCode::from(66);
            }
        }
    } else {
        cordon::Sandbox::new(&module)
    };
    let sandbox = match out {
        None => sandbox,
        Some(path) => match redirect(sandbox, &path) {
            Ok(sandbox) => sandbox,
            Err(e) => {
                eprintln!("embed: cannot open {path}: {e}");
                return ExitCode::from(73);
            }
        },
    };
    let outcome = sandbox
        .env("EMBEDDED_BY", "examples/embed.rs")
        .mem_mib(64)
        .timeout(Duration::from_secs(10))
        .on_fault(policy)
        .run();
    match outcome {
        Ok(outcome) => {
            let events: Vec<String> = outcome.events.iter().map(describe).collect();
            eprintln!("embed: events: {}", events.join(", "));
            match &outcome.reason {
                Some(reason) => eprintln!("embed: {module} ended: {reason}"),
                None => eprintln!("embed: {module} exited with {}", outcome.exit.code()),
            }
            ExitCode::from(outcome.exit.code())
        }
        Err(e) => {
            eprintln!("embed: cannot run {module}: {}", cordon::error_chain(&e));
            ExitCode::from(e.cause().code())
        }
    }
}

/// Removes `flag VALUE` from `args`; the value.
fn take_option(args: &mut Vec<String>, flag: &str) -> Option<String> {
    let i = args.iter().position(|a| a == flag)?;
    if i + 1 >= args.len() {
        return None;
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Some(value)
}

/// One event in a few words.
fn describe(event: &cordon::SandboxEvent) -> String {
    match event {
        cordon::SandboxEvent::Vm { vm, .. } => vm.name().to_string(),
        cordon::SandboxEvent::Fault { fault, .. } => format!("fault ({})", fault.action),
        cordon::SandboxEvent::Violation { violation, .. } => {
            format!("violation in {}", violation.process)
        }
    }
}

/// The sandbox's stdout to `path`; stdin from /dev/null; stderr this
/// program's.
fn redirect(sandbox: cordon::Sandbox, path: &str) -> std::io::Result<cordon::Sandbox> {
    use std::os::fd::AsFd;
    let stdin = std::fs::File::open("/dev/null")?;
    let stdout = std::fs::File::create(path)?;
    let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
    Ok(sandbox.stdio(stdin, stdout, stderr))
}
