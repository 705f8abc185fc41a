//! Everything the supervisor opens for a vm process: /dev/kvm, the image, the
//! guest memory memfd and cordon's own executable. Children open no path.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kvm_ioctls::{Cap, Kvm};

use crate::exit::ExitCause;
use crate::spawn::{self, SpawnError};

const WASM_MAGIC: &[u8; 4] = b"\0asm";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("cannot open /dev/kvm (run `cordon check`)")]
    Kvm(#[source] std::io::Error),
    #[error("cannot read the host's memory size")]
    HostMemory(#[from] crate::check::CheckError),
    #[error("cannot open image {path}")]
    Image {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("image {path} is a directory")]
    ImageIsDirectory { path: PathBuf },
    #[error("image {path} is {what}")]
    NotAnImage { path: PathBuf, what: &'static str },
    #[error("cannot create guest memory")]
    Memfd(#[source] std::io::Error),
    #[error(transparent)]
    SelfExe(#[from] SpawnError),
}

impl ResourceError {
    pub fn cause(&self) -> ExitCause {
        match self {
            ResourceError::Kvm(_) => ExitCause::HostUnsupported,
            ResourceError::Image { .. } | ResourceError::ImageIsDirectory { .. } => {
                ExitCause::ImageUnreadable
            }
            ResourceError::NotAnImage { .. } => ExitCause::BadImage,
            _ => ExitCause::Internal,
        }
    }
}

/// /dev/kvm and what the host allows.
pub struct Host {
    /// The fd handed to the vm process.
    pub kvm: File,
    /// The supervisor's own handle on KVM's system ioctls.
    pub system: Kvm,
    pub host_mib: u64,
    pub max_vcpus: u32,
}

/// Opens /dev/kvm and reads the host's limits.
pub fn host() -> Result<Host, ResourceError> {
    let kvm = File::options()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(ResourceError::Kvm)?;
    let host_mib = crate::check::host_memory_kib()? / 1024;
    // SAFETY: `kvm` is an open /dev/kvm fd; the Kvm wrapper borrows a
    // duplicate that it owns and closes.
    let system = unsafe { Kvm::from_raw_fd(dup(&kvm)?) };
    let max_vcpus = u32::try_from(system.check_extension_int(Cap::MaxVcpus))
        .unwrap_or(1)
        .max(1);
    Ok(Host {
        kvm,
        system,
        host_mib,
        max_vcpus,
    })
}

fn dup(file: &File) -> Result<i32, ResourceError> {
    let copy = file.try_clone().map_err(ResourceError::Kvm)?;
    Ok(std::os::fd::IntoRawFd::into_raw_fd(copy))
}

/// What an image is, by its content.
#[derive(Debug)]
pub enum Image {
    /// An ELF unikernel (Guest ABI v1).
    Elf(File),
    /// A WebAssembly module, run by the Wasm runtime.
    Wasm(File),
}

/// Opens the image and checks by content that it is one cordon can boot.
pub fn open_image(path: &Path) -> Result<Image, ResourceError> {
    let file = File::open(path).map_err(|source| ResourceError::Image {
        path: path.to_owned(),
        source,
    })?;
    let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
    if is_dir {
        return Err(ResourceError::ImageIsDirectory {
            path: path.to_owned(),
        });
    }
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read_at(&mut magic[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(source) => {
                return Err(ResourceError::Image {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    let what = if crate::boot::elf::is_elf(&magic[..got]) {
        return Ok(Image::Elf(file));
    } else if &magic == WASM_MAGIC {
        return Ok(Image::Wasm(file));
    } else if got == 0 {
        "empty, neither an ELF executable nor a WebAssembly module"
    } else {
        "neither an ELF executable nor a WebAssembly module"
    };
    Err(ResourceError::NotAnImage {
        path: path.to_owned(),
        what,
    })
}

/// Creates `bytes` of guest memory as a memfd sealed against growing and
/// shrinking (never against writing: the guest writes it).
pub fn guest_memory(bytes: u64) -> Result<OwnedFd, ResourceError> {
    let err = || ResourceError::Memfd(std::io::Error::last_os_error());
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns
    // a new fd or -1.
    let raw = unsafe {
        libc::memfd_create(
            c"cordon-guest".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(err());
    }
    // SAFETY: memfd_create succeeded; we own the new fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let size = libc::off_t::try_from(bytes)
        .map_err(|_| ResourceError::Memfd(std::io::ErrorKind::InvalidInput.into()))?;
    let seals = libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: `fd` is our open memfd; ftruncate and fcntl only act on it.
    let ok = unsafe {
        libc::ftruncate(raw, size) == 0 && libc::fcntl(raw, libc::F_ADD_SEALS, seals) == 0
    };
    if !ok {
        return Err(err());
    }
    Ok(fd)
}

/// cordon's own executable, for the spawn helper.
pub fn own_executable() -> Result<File, ResourceError> {
    Ok(spawn::open_self()?)
}
