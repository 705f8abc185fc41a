//! The vm process: creates the KVM VM on the inherited /dev/kvm fd, maps the
//! guest memory memfd, loads the image, runs one thread per vCPU and reports
//! typed events to its supervisor on the control socket.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod boot;
#[cfg(target_arch = "x86_64")]
mod console;
#[cfg(target_arch = "x86_64")]
mod devices;
mod error;
#[cfg(target_arch = "x86_64")]
mod exits;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod image;
#[cfg(target_arch = "x86_64")]
mod loader;
#[cfg(target_arch = "x86_64")]
mod memory;
#[cfg(target_arch = "x86_64")]
mod run;
#[cfg(target_arch = "x86_64")]
mod vcpu;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::control::{self, FromVm, ToVm};
use crate::events::VmEvent;
use crate::spawn::{CONTROL_FD, DEATH_PIPE_FD};

pub use error::BootError;

/// Entry point of `cordon vm`, jailed as `mode` says: never returns.
/// `wasm_runtime` is the Wasm runtime's ELF this binary carries (the image
/// of a WebAssembly module's sandbox).
pub fn main(mode: crate::spawn::ChildMode, wasm_runtime: &'static [u8]) -> ! {
    // SAFETY: the spawn helper placed the control socket and the read end of
    // the death pipe at these numbers before exec; nothing else owns them.
    let (control, death) = unsafe {
        (
            UnixStream::from_raw_fd(CONTROL_FD),
            OwnedFd::from_raw_fd(DEATH_PIPE_FD),
        )
    };
    let mut reader = match control.try_clone() {
        Ok(r) => r,
        Err(e) => die(&format!("cannot clone the control socket: {e}")),
    };
    let config = match control::recv::<ToVm>(&mut reader) {
        Ok(ToVm::Boot(config)) => config,
        Ok(other) => die(&format!("expected the boot message, got {other:?}")),
        Err(e) => die(&format!("no boot message from the supervisor: {e}")),
    };
    if let Ok(level) = config.log_level.parse() {
        log::set_max_level(level);
    }
    let mut events = control;
    let err = boot_and_run(&config, wasm_runtime, &mut events, death, mode.seccomp());
    let event = VmEvent::BootFailed {
        cause: err.cause(),
        message: crate::error_chain(&err),
    };
    let _ = control::send(&mut events, &FromVm::Event(event));
    std::process::exit(1)
}

/// Boots and runs the guest; returns only if booting failed.
#[cfg(target_arch = "x86_64")]
fn boot_and_run(
    config: &crate::config::VmConfig,
    wasm_runtime: &'static [u8],
    events: &mut UnixStream,
    death: OwnedFd,
    vcpu_seccomp: Option<jail::seccomp::Mode>,
) -> BootError {
    match boot::boot(config, wasm_runtime) {
        Ok(vm) => run::run(vm, config, events, death, vcpu_seccomp),
        Err(e) => e,
    }
}

/// The arm64 path (`aarch64.rs`): one vCPU, no devices yet; its vCPU runs
/// on this thread under the vm filter.
#[cfg(target_arch = "aarch64")]
fn boot_and_run(
    config: &crate::config::VmConfig,
    _: &'static [u8],
    events: &mut UnixStream,
    _: OwnedFd,
    _: Option<jail::seccomp::Mode>,
) -> BootError {
    aarch64::boot_and_run(config, events)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn boot_and_run(
    _: &crate::config::VmConfig,
    _: &'static [u8],
    _: &mut UnixStream,
    _: OwnedFd,
    _: Option<jail::seccomp::Mode>,
) -> BootError {
    BootError::UnsupportedArch(std::env::consts::ARCH)
}

fn die(message: &str) -> ! {
    log::error!("{message}");
    std::process::exit(1)
}
