//! `cordon device KIND --socket PATH`: one of cordon's backends standalone,
//! for any vhost-user frontend.

use std::fs::File;
use std::process::ExitCode;

use devices::block::BlockConfig;
use devices::console::ConsoleConfig;
use devices::rng::RngConfig;
use devices::Mode;
use vhost::vhost_user::Listener;
use vmm::exit::ExitCause;

use crate::cli::{Device, DeviceKindCommand};

fn failed(what: &str, err: &dyn std::error::Error) -> ExitCode {
    eprintln!("cordon: {what}: {}", vmm::error_chain(err));
    ExitCode::from(ExitCause::DeviceFailed.code())
}

/// `cordon device KIND ...`: binds the socket and opens the image first.
pub fn standalone(cmd: &Device) -> ExitCode {
    let bind = |path: &std::path::Path| Listener::new(path, true);
    let result = match &cmd.kind {
        DeviceKindCommand::Rng(rng) => match bind(&rng.socket) {
            Ok(listener) => devices::rng::start_backend(RngConfig {
                listener,
                mode: Mode::Standalone,
            })
            .map_err(|e| failed("rng backend", &e)),
            Err(e) => Err(failed(
                &format!("cannot listen on {}", rng.socket.display()),
                &e,
            )),
        },
        DeviceKindCommand::Console(console) => match bind(&console.socket) {
            Ok(listener) => ConsoleConfig::standalone(listener)
                .and_then(devices::console::start_backend)
                .map_err(|e| failed("console backend", &e)),
            Err(e) => Err(failed(
                &format!("cannot listen on {}", console.socket.display()),
                &e,
            )),
        },
        DeviceKindCommand::Block(block) => {
            let image = File::options()
                .read(true)
                .write(!block.read_only)
                .open(&block.image);
            match (image, bind(&block.socket)) {
                (Err(e), _) => {
                    eprintln!("cordon: cannot open image {}: {e}", block.image.display());
                    return ExitCode::from(ExitCause::ImageUnreadable.code());
                }
                (_, Err(e)) => Err(failed(
                    &format!("cannot listen on {}", block.socket.display()),
                    &e,
                )),
                (Ok(image), Ok(listener)) => {
                    let config = BlockConfig {
                        listener,
                        mode: Mode::Standalone,
                        image,
                        read_only: block.read_only,
                        serial: None,
                    };
                    devices::block::start_backend(config).map_err(|e| failed("block backend", &e))
                }
            }
        }
    };
    result.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}
