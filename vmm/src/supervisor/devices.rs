//! Device processes: the supervisor opens their images and their vhost-user
//! sockets, spawns them through the spawn helper and hands the other end of
//! each socket to the vm process. No child opens a path or a socket.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use protocol::device::{DeviceConfig, DeviceKind, ToDevice};

use crate::spawn::{self, Child, Role, SandboxJail, FIRST_KEPT_FD};

/// A `--disk` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    pub path: PathBuf,
    pub read_only: bool,
}

/// Which devices a sandbox gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceRequest {
    /// Two virtio consoles (stdout+stdin, stderr), served by one process.
    pub console: bool,
    pub disks: Vec<DiskSpec>,
    pub rng: bool,
    /// Backends cordon does not run (QEMU's vhost-user-blk export,
    /// virtiofsd, ...): the supervisor connects to each socket and hands
    /// the connection to the vm process. They come after cordon's own.
    pub external: Vec<(DeviceKind, PathBuf)>,
}

impl DeviceRequest {
    /// How many virtio devices the guest will see.
    pub fn count(&self) -> usize {
        2 * usize::from(self.console)
            + self.disks.len()
            + usize::from(self.rng)
            + self.external.len()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceSetupError {
    #[error("cannot open disk image {path}")]
    Disk {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the vhost-user socket for {name}")]
    Socket {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the {kind} backend at {path}")]
    External {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the {name} device process")]
    Spawn {
        name: String,
        source: spawn::SpawnError,
    },
    #[error("no device process {0} to restart")]
    NoSuchDevice(usize),
    #[error("cannot configure the {name} device process")]
    Control {
        name: String,
        source: crate::control::ControlError,
    },
}

/// One device process, started.
pub struct RunningDevice {
    pub name: String,
    pub child: Child,
    /// (kind, name, the vm process's end) for each device it serves.
    pub vm_ends: Vec<(DeviceKind, String, UnixStream)>,
}

struct Planned {
    kind: DeviceKind,
    /// Names of the devices this process serves.
    names: Vec<String>,
    image: Option<(File, bool)>,
}

fn open_disk(disk: &DiskSpec) -> Result<File, DeviceSetupError> {
    File::options()
        .read(true)
        .write(!disk.read_only)
        .open(&disk.path)
        .map_err(|source| DeviceSetupError::Disk {
            path: disk.path.clone(),
            source,
        })
}

/// The device processes `req` asks for, in order: kind, device names and
/// the disk it serves; `open` opens the disk.
fn plan(req: &DeviceRequest) -> Vec<(DeviceKind, Vec<String>, Option<&DiskSpec>)> {
    let mut planned = Vec::new();
    if req.console {
        let names = vec!["console0".to_string(), "console1".to_string()];
        planned.push((DeviceKind::Console, names, None));
    }
    for (i, disk) in req.disks.iter().enumerate() {
        planned.push((DeviceKind::Block, vec![format!("block{i}")], Some(disk)));
    }
    if req.rng {
        planned.push((DeviceKind::Rng, vec!["rng".to_string()], None));
    }
    planned
}

/// A planned process with its disk image (if any) opened.
fn open(
    (kind, names, disk): (DeviceKind, Vec<String>, Option<&DiskSpec>),
) -> Result<Planned, DeviceSetupError> {
    let image = match disk {
        Some(disk) => Some((open_disk(disk)?, disk.read_only)),
        None => None,
    };
    Ok(Planned { kind, names, image })
}

/// A listening socket with the vm process's connection already queued on
/// it. The path lives only between bind and connect, in a fresh 0700
/// directory, so nobody else can connect; the device process accepts the
/// queued connection from the inherited listener.
fn connected_listener(name: &str) -> Result<(UnixListener, UnixStream), DeviceSetupError> {
    let err = |source| DeviceSetupError::Socket {
        name: name.to_string(),
        source,
    };
    let dir = private_dir().map_err(err)?;
    let path = dir.join("vhost-user.sock");
    let result = (|| {
        let listener = UnixListener::bind(&path)?;
        let client = UnixStream::connect(&path)?;
        Ok((listener, client))
    })();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    result.map_err(err)
}

fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("cordon-{}-{attempt}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::ErrorKind::AlreadyExists.into())
}

/// Opens everything and starts one process per planned device.
pub fn start(
    exe: &File,
    req: &DeviceRequest,
    log_level: &str,
    jail: Option<&SandboxJail>,
    stdio: Option<[std::os::fd::RawFd; 3]>,
) -> Result<Vec<RunningDevice>, DeviceSetupError> {
    // Every image is opened before any process starts.
    let planned = plan(req)
        .into_iter()
        .map(open)
        .collect::<Result<Vec<_>, _>>()?;
    let mut running = Vec::new();
    for p in planned {
        running.push(start_one(exe, p, log_level, jail, stdio)?);
    }
    Ok(running)
}

/// Starts device process `index` (in `start`'s order) again, with fresh
/// fds: its images opened again, new sockets.
pub fn restart(
    exe: &File,
    req: &DeviceRequest,
    log_level: &str,
    jail: Option<&SandboxJail>,
    stdio: Option<[std::os::fd::RawFd; 3]>,
    index: usize,
) -> Result<RunningDevice, DeviceSetupError> {
    let planned = plan(req)
        .into_iter()
        .nth(index)
        .ok_or(DeviceSetupError::NoSuchDevice(index))?;
    start_one(exe, open(planned)?, log_level, jail, stdio)
}

fn start_one(
    exe: &File,
    p: Planned,
    log_level: &str,
    jail: Option<&SandboxJail>,
    stdio: Option<[std::os::fd::RawFd; 3]>,
) -> Result<RunningDevice, DeviceSetupError> {
    let name = p.names.join("+");
    let mut listeners = Vec::new();
    let mut vm_ends = Vec::new();
    for device in &p.names {
        let (listener, client) = connected_listener(device)?;
        listeners.push(listener);
        vm_ends.push((p.kind, device.clone(), client));
    }
    let mut keep: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
    if let Some((image, _)) = &p.image {
        keep.push(image.as_fd());
    }
    let mut child =
        spawn::spawn(exe, Role::Device(p.kind), &keep, jail, stdio).map_err(|source| {
            DeviceSetupError::Spawn {
                name: name.clone(),
                source,
            }
        })?;
    let first = FIRST_KEPT_FD;
    let config = DeviceConfig {
        kind: p.kind,
        name: name.clone(),
        log_level: log_level.to_string(),
        listeners: (0..listeners.len() as i32).map(|i| first + i).collect(),
        image: p.image.as_ref().map(|_| first + listeners.len() as i32),
        read_only: p.image.as_ref().is_some_and(|(_, ro)| *ro),
    };
    crate::control::send(&mut child.control, &ToDevice::Start(config)).map_err(|source| {
        DeviceSetupError::Control {
            name: name.clone(),
            source,
        }
    })?;
    log::debug!("{name} device process started, pid {}", child.pid);
    Ok(RunningDevice {
        name,
        child,
        vm_ends,
    })
}

/// Connects to every external backend: (kind, name, the vm process's end).
pub fn connect_external(
    req: &DeviceRequest,
) -> Result<Vec<(DeviceKind, String, UnixStream)>, DeviceSetupError> {
    req.external
        .iter()
        .enumerate()
        .map(|(i, (kind, path))| {
            let stream =
                UnixStream::connect(path).map_err(|source| DeviceSetupError::External {
                    kind: kind.name(),
                    path: path.clone(),
                    source,
                })?;
            Ok((*kind, format!("external-{}{i}", kind.name()), stream))
        })
        .collect()
}
