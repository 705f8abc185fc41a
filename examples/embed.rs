//! Embeds cordon: runs a WebAssembly module (default
//! `examples/hello.wasm`) in a jailed micro-VM from this program and
//! reports how it ended.
//!
//!     cargo run --release --example embed -- examples/hello.wasm
//!
//! The sandbox's vm and console processes are re-executions of this very
//! binary: `serve_if_spawned` turns them into what they are.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    cordon::serve_if_spawned();
    let module = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/hello.wasm".into());
    let outcome = cordon::Sandbox::new(&module)
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
