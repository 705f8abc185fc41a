//! Why a vm process could not boot its guest.

use crate::boot::bootinfo::BootInfoError;
use crate::boot::elf::ElfError;
use crate::boot::layout::LayoutError;
use crate::exit::ExitCause;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot read the image")]
    ReadImage(#[source] std::io::Error),
    #[error("cannot read the Wasm module")]
    ReadModule(#[source] std::io::Error),
    #[error("this binary carries no Wasm runtime")]
    NoWasmRuntime,
    #[error("the image ({size} bytes) is larger than guest memory ({limit} bytes)")]
    ImageTooLarge { size: u64, limit: u64 },
    #[error("bad image")]
    Elf(#[from] ElfError),
    #[error("the image does not fit")]
    Layout(#[from] LayoutError),
    #[error("bad boot parameters")]
    BootInfo(#[from] BootInfoError),
    #[cfg(target_arch = "x86_64")]
    #[error("guest memory")]
    Memory(#[from] super::memory::MemoryError),
    #[cfg(target_arch = "x86_64")]
    #[error("cannot load the image")]
    Load(#[from] super::loader::LoadError),
    #[cfg(target_arch = "x86_64")]
    #[error("virtio devices")]
    Devices(#[from] super::devices::DevicesError),
    #[error("cannot create an eventfd")]
    EventFd(#[source] std::io::Error),
    #[error("the supervisor sent more CPUID entries than KVM takes")]
    Cpuid,
    #[error("guests for {0} are not supported yet")]
    UnsupportedArch(&'static str),
    #[error("KVM refused to {what}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
}

/// Maps a KVM ioctl's error to `BootError::Kvm` saying what was refused.
pub fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> BootError {
    move |source| BootError::Kvm { what, source }
}

impl BootError {
    /// The exit cause the supervisor reports for this error.
    pub fn cause(&self) -> ExitCause {
        match self {
            BootError::ReadImage(_) | BootError::ReadModule(_) => ExitCause::ImageUnreadable,
            BootError::ImageTooLarge { .. } | BootError::Elf(_) | BootError::Layout(_) => {
                ExitCause::BadImage
            }
            #[cfg(target_arch = "x86_64")]
            BootError::Load(super::loader::LoadError::Paging(_)) => ExitCause::BadImage,
            BootError::BootInfo(_) => ExitCause::Usage,
            #[cfg(target_arch = "x86_64")]
            BootError::Devices(_) => ExitCause::DeviceFailed,
            BootError::Cpuid | BootError::EventFd(_) | BootError::NoWasmRuntime => {
                ExitCause::Internal
            }
            #[cfg(target_arch = "x86_64")]
            BootError::Memory(_) | BootError::Load(_) => ExitCause::Internal,
            BootError::Kvm { .. } | BootError::UnsupportedArch(_) => ExitCause::HostUnsupported,
        }
    }
}
