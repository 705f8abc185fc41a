//! Embeds cordon: runs a WebAssembly module (default
//! `examples/hello.wasm`) in a jailed micro-VM from this program and
//! reports how it ended.
//!
//!     cargo run --release --example embed -- examples/hello.wasm
//!     cargo run --release --example embed -- --bytes examples/hello.wasm
//!
//! With `--bytes` the module is read into memory first and handed over as
//! bytes (`Sandbox::wasm_bytes`).
//!
//! The sandbox's vm and console processes are re-executions of this very
//! binary: `serve_if_spawned` turns them into what they are.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    cordon::serve_if_spawned();
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let outcome = sandbox
        .env("EMBEDDED_BY", "examples/embed.rs")
        .mem_mib(64)
        .timeout(Duration::from_secs(10))
        .run();
    match outcome {
        Ok(outcome) => {
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
