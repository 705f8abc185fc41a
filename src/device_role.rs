//! The binary's device side: `cordon device KIND --socket PATH` (standalone
//! backends for any frontend) and the device processes `cordon run` spawns.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;

use devices::block::BlockConfig;
use devices::console::{ConsoleConfig, ConsolePort};
use devices::rng::RngConfig;
use devices::Mode;
use protocol::device::{DeviceConfig, DeviceKind, ToDevice};
use vhost::vhost_user::Listener;
use vmm::exit::ExitCause;
use vmm::spawn::{CONTROL_FD, DEATH_PIPE_FD};

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

/// Ends this process when the supervisor is gone (EOF on the death pipe).
fn watch_parent(death: OwnedFd) {
    let spawned = std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            let mut pipe = File::from(death);
            // Blocks until the supervisor exits; any outcome means it is gone.
            let _ = pipe.read(&mut [0u8; 1]);
            // SAFETY: _exit ends the process at once; nothing needs flushing.
            unsafe { libc::_exit(1) }
        });
    if let Err(e) = spawned {
        eprintln!("cordon: cannot watch the supervisor: {e}");
        std::process::exit(1);
    }
}

/// A device process spawned by `cordon run`: reads its config from the
/// control socket and serves the one connection queued on each listener.
pub fn spawned(kind: DeviceKind) -> ! {
    // SAFETY: the spawn helper placed the control socket and the death
    // pipe's read end at these numbers before exec; nothing else owns them.
    let (mut control, death) = unsafe {
        (
            UnixStream::from_raw_fd(CONTROL_FD),
            OwnedFd::from_raw_fd(DEATH_PIPE_FD),
        )
    };
    watch_parent(death);
    let config = match vmm::control::recv::<ToDevice>(&mut control) {
        Ok(ToDevice::Start(config)) if config.kind == kind => config,
        Ok(ToDevice::Start(config)) => {
            eprintln!(
                "cordon: a {} process was sent a {} config",
                kind.name(),
                config.kind.name()
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("cordon: no config from the supervisor: {e}");
            std::process::exit(1);
        }
    };
    if let Ok(level) = config.log_level.parse() {
        log::set_max_level(level);
    }
    let code = match serve_spawned(&config) {
        Ok(()) => 0,
        Err(message) => {
            log::error!("{}: {message}", config.name);
            1
        }
    };
    std::process::exit(code)
}

/// Takes ownership of an inherited fd named in the config.
fn inherited(fd: i32) -> OwnedFd {
    // SAFETY: the supervisor handed this fd over at this number for this
    // process alone (DeviceConfig), and each is wrapped exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn serve_spawned(config: &DeviceConfig) -> Result<(), String> {
    let mut listeners = config
        .listeners
        .iter()
        .map(|&fd| Listener::from(UnixListener::from(inherited(fd))));
    let chain = |e: &dyn std::error::Error| vmm::error_chain(e);
    match config.kind {
        DeviceKind::Rng => {
            let listener = listeners.next().ok_or("no listener")?;
            devices::rng::start_backend(RngConfig {
                listener,
                mode: Mode::Spawned,
            })
            .map_err(|e| chain(&e))
        }
        DeviceKind::Block => {
            let listener = listeners.next().ok_or("no listener")?;
            let image = File::from(inherited(config.image.ok_or("no image")?));
            let block = BlockConfig {
                listener,
                mode: Mode::Spawned,
                image,
                read_only: config.read_only,
                serial: None,
            };
            devices::block::start_backend(block).map_err(|e| chain(&e))
        }
        DeviceKind::Console => {
            let dup = |fd: std::io::Result<OwnedFd>| {
                fd.map_err(|e| format!("cannot dup a stdio fd: {e}"))
            };
            let stdout = dup(std::io::stdout().as_fd().try_clone_to_owned())?;
            let stderr = dup(std::io::stderr().as_fd().try_clone_to_owned())?;
            let stdin = dup(std::io::stdin().as_fd().try_clone_to_owned())?;
            let mut ports = Vec::new();
            for (output, input) in [(stdout, Some(stdin)), (stderr, None)] {
                let listener = listeners.next().ok_or("too few listeners")?;
                ports.push(ConsolePort {
                    listener,
                    output,
                    input,
                });
            }
            devices::console::start_backend(ConsoleConfig {
                ports,
                mode: Mode::Spawned,
            })
            .map_err(|e| chain(&e))
        }
    }
}
