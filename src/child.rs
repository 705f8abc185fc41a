//! The processes `cordon run` spawns: a re-executed binary whose argv[1]
//! names a role (`vm`, `device-console`, ...). [`serve_if_spawned`] turns
//! such a process into that role; any program that runs sandboxes through
//! this crate calls it first thing in `main`, since the children are
//! re-executions of its own binary.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use devices::block::BlockConfig;
use devices::console::{ConsoleConfig, ConsolePort};
use devices::rng::RngConfig;
use devices::Mode;
use protocol::device::{DeviceConfig, DeviceKind, ToDevice};
use vhost::vhost_user::Listener;
use vmm::exit::ExitCause;
use vmm::spawn::{Role, CONTROL_FD, DEATH_PIPE_FD};

use crate::logger;

/// If this process is a child the spawn helper started (`cordon ROLE KEPT
/// MODE`), runs that role and never returns; otherwise returns at once.
pub fn serve_if_spawned() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(role) = argv
        .get(1)
        .and_then(|arg| Role::ALL.into_iter().find(|r| r.arg() == arg))
    {
        run_role(role, &argv[2..]);
    }
}

/// A child process started by the spawn helper: `cordon vm KEPT MODE`,
/// `cordon device-block KEPT MODE`, ... Not user commands. Its jail comes
/// first, before any thread or allocation of note.
fn run_role(role: Role, args: &[String]) -> ! {
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
        Role::Vm => vmm::vm::main(mode, crate::WASM_RUNTIME),
        Role::Device(kind) => spawned(kind),
    }
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
fn spawned(kind: DeviceKind) -> ! {
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
