//! Why a sandbox ended, and the process exit status each cause maps to.
//!
//! The guest's own status (0..=255) passes through unchanged. cordon's own
//! causes use the fixed codes below (documented in the README). A guest can
//! return the same numbers, so the cause is always also printed on stderr.

use serde::{Deserialize, Serialize};

/// A cause of a sandbox ending that is cordon's, not the guest's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitCause {
    /// Bad command line (argh's own errors included).
    Usage,
    /// The image is not one cordon can boot (not an ELF, wrong machine, bad segments).
    BadImage,
    /// The image could not be opened or read.
    ImageUnreadable,
    /// The host lacks something cordon needs (KVM, a capability, memory).
    HostUnsupported,
    /// A bug or an unexpected host error in cordon itself.
    Internal,
    /// A vCPU hit a fault it cannot continue from (triple fault, failed entry, ...).
    VcpuFault,
    /// The guest wrote more than its console budget.
    ConsoleBudget,
    /// The guest asked to exit with a value above 255.
    BadGuestExit,
    /// The vm process (or another child) died without reporting why.
    ChildDied,
    /// A device backend failed (at connect, or by dying).
    DeviceFailed,
    /// `--timeout` passed.
    Timeout,
    /// The Wasm module does not validate or compile.
    WasmInvalid,
    /// The Wasm module cannot be instantiated (an import from a module
    /// other than WASI, a trap in its start function).
    WasmLink,
    /// The Wasm module exports no `_start` function of type () -> ().
    WasmNoStart,
    /// The Wasm module trapped.
    WasmTrap,
    /// The Wasm module ran out of fuel (`--fuel`).
    WasmOutOfFuel,
    /// A process of the sandbox made a system call its seccomp policy
    /// forbids, and was stopped.
    JailViolation,
    /// cordon was asked to stop by SIGINT.
    Interrupted,
    /// cordon was asked to stop by SIGTERM.
    Terminated,
}

impl ExitCause {
    /// Every cause, for the documentation table and its test.
    pub const ALL: [ExitCause; 19] = [
        ExitCause::Usage,
        ExitCause::BadImage,
        ExitCause::ImageUnreadable,
        ExitCause::HostUnsupported,
        ExitCause::Internal,
        ExitCause::VcpuFault,
        ExitCause::ConsoleBudget,
        ExitCause::BadGuestExit,
        ExitCause::ChildDied,
        ExitCause::DeviceFailed,
        ExitCause::WasmInvalid,
        ExitCause::WasmLink,
        ExitCause::WasmNoStart,
        ExitCause::WasmTrap,
        ExitCause::WasmOutOfFuel,
        ExitCause::JailViolation,
        ExitCause::Timeout,
        ExitCause::Interrupted,
        ExitCause::Terminated,
    ];

    /// The process exit status for this cause.
    pub const fn code(self) -> u8 {
        match self {
            ExitCause::Usage => 64,
            ExitCause::BadImage => 65,
            ExitCause::ImageUnreadable => 66,
            ExitCause::HostUnsupported => 69,
            ExitCause::Internal => 70,
            ExitCause::VcpuFault => 120,
            ExitCause::ConsoleBudget => 121,
            ExitCause::BadGuestExit => 122,
            ExitCause::ChildDied => 123,
            ExitCause::Timeout => 124,
            ExitCause::DeviceFailed => 125,
            ExitCause::WasmInvalid => 110,
            ExitCause::WasmLink => 111,
            ExitCause::WasmNoStart => 112,
            ExitCause::WasmTrap => 113,
            ExitCause::WasmOutOfFuel => 114,
            // 128 + SIGSYS, as a shell reports a process killed by SIGSYS.
            ExitCause::JailViolation => 159,
            ExitCause::Interrupted => 130,
            ExitCause::Terminated => 143,
        }
    }

    /// A short name for logs and `--events`.
    pub const fn name(self) -> &'static str {
        match self {
            ExitCause::Usage => "usage",
            ExitCause::BadImage => "bad-image",
            ExitCause::ImageUnreadable => "image-unreadable",
            ExitCause::HostUnsupported => "host-unsupported",
            ExitCause::Internal => "internal",
            ExitCause::VcpuFault => "vcpu-fault",
            ExitCause::ConsoleBudget => "console-budget",
            ExitCause::BadGuestExit => "bad-guest-exit",
            ExitCause::ChildDied => "child-died",
            ExitCause::Timeout => "timeout",
            ExitCause::DeviceFailed => "device-failed",
            ExitCause::WasmInvalid => "wasm-invalid",
            ExitCause::WasmLink => "wasm-link",
            ExitCause::WasmNoStart => "wasm-no-start",
            ExitCause::WasmTrap => "wasm-trap",
            ExitCause::WasmOutOfFuel => "wasm-out-of-fuel",
            ExitCause::JailViolation => "jail-violation",
            ExitCause::Interrupted => "interrupted",
            ExitCause::Terminated => "terminated",
        }
    }
}

impl ExitCause {
    /// The cause a Wasm runtime exit status (`guest_abi::wasm_exit`) stands
    /// for, if it is one.
    pub fn of_wasm_runtime(status: u32) -> Option<ExitCause> {
        use guest_abi::wasm_exit;
        Some(match status {
            wasm_exit::NO_MODULE => ExitCause::Internal,
            wasm_exit::INVALID_MODULE => ExitCause::WasmInvalid,
            wasm_exit::INSTANTIATION => ExitCause::WasmLink,
            wasm_exit::NO_START => ExitCause::WasmNoStart,
            wasm_exit::TRAP => ExitCause::WasmTrap,
            wasm_exit::OUT_OF_FUEL => ExitCause::WasmOutOfFuel,
            _ => return None,
        })
    }
}

/// How a sandbox ended: the guest chose a status, or cordon had a cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxExit {
    /// The guest exited with this status.
    Guest(u8),
    /// cordon ended the sandbox.
    Cordon(ExitCause),
}

impl SandboxExit {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            SandboxExit::Guest(status) => status,
            SandboxExit::Cordon(cause) => cause.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_violation_code_is_the_one_the_jail_exits_with() {
        assert_eq!(
            i32::from(ExitCause::JailViolation.code()),
            jail::seccomp::VIOLATION_EXIT_CODE
        );
    }

    #[test]
    fn codes_are_distinct_and_nonzero() {
        let mut codes: Vec<u8> = ExitCause::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ExitCause::ALL.len());
        assert!(!codes.contains(&0));
    }
}
