//! Typed lifecycle events a vm process reports to its supervisor.
//!
//! Architecture-neutral: a program counter is `pc` (RIP on x86_64, PC on
//! arm64) and each fault kind names the KVM exit it came from.

use serde::{Deserialize, Serialize};

use crate::exit::ExitCause;

/// What a vCPU can be after an exit: see `docs/guest-abi.md` and the
/// `vm::vcpu` state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VcpuStatus {
    /// Runnable.
    Ready,
    /// Its state is unusable, but re-initialising it (and reloading the
    /// image) can make it runnable again.
    Poisoned,
    /// KVM refuses it in a way cordon cannot repair.
    Unrecoverable,
}

/// Why a vCPU stopped in a way the guest did not ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// The guest shut the vCPU down (x86_64: triple fault, KVM_EXIT_SHUTDOWN).
    Shutdown,
    /// KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY).
    FailEntry { hardware_reason: u64 },
    /// KVM gave up on the guest (KVM_EXIT_INTERNAL_ERROR); 1 is an
    /// instruction KVM's emulator cannot emulate.
    InternalError { suberror: u32 },
    /// KVM_RUN failed with an errno cordon does not expect.
    RunFailed { errno: i32 },
    /// An exit reason cordon does not serve (KVM_EXIT_*).
    UnhandledExit { reason: u32 },
    /// arm64: KVM caught the guest in an AArch32 mode the host will not
    /// run and invalidated the vCPU (KVM_RUN: EINVAL, KVM_EXIT_FAIL_ENTRY).
    BadAArch32,
    /// arm64: KVM_RUN on a vCPU that is not initialised (ENOEXEC).
    Uninitialized,
    /// arm64: KVM_EXIT_FAIL_ENTRY with KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED
    /// (a PMU bound to CPUs the thread is not on; cordon binds none).
    CpuUnsupported { hardware_reason: u64 },
}

impl FaultKind {
    /// The state the vCPU is left in.
    pub fn status(&self) -> VcpuStatus {
        match self {
            FaultKind::RunFailed { .. } | FaultKind::CpuUnsupported { .. } => {
                VcpuStatus::Unrecoverable
            }
            _ => VcpuStatus::Poisoned,
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Shutdown => write!(f, "shutdown (triple fault)"),
            FaultKind::FailEntry { hardware_reason } => {
                write!(f, "failed entry (hardware reason {hardware_reason:#x})")
            }
            FaultKind::InternalError { suberror } => {
                let what = match suberror {
                    1 => "emulation failure",
                    2 => "simultaneous exceptions",
                    3 => "delivery event",
                    _ => "unknown",
                };
                write!(f, "internal error (suberror {suberror}: {what})")
            }
            FaultKind::RunFailed { errno } => {
                let text = std::io::Error::from_raw_os_error(*errno);
                write!(f, "KVM_RUN failed ({text})")
            }
            FaultKind::UnhandledExit { reason } => write!(f, "unhandled exit reason {reason}"),
            FaultKind::BadAArch32 => {
                write!(f, "bad AArch32 mode (KVM invalidated the vCPU)")
            }
            FaultKind::Uninitialized => write!(f, "the vCPU is not initialised"),
            FaultKind::CpuUnsupported { hardware_reason } => write!(
                f,
                "failed entry on a CPU the vCPU does not support (hardware reason {hardware_reason:#x})"
            ),
        }
    }
}

/// A vCPU fault with where it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuFault {
    pub vcpu: u32,
    pub kind: FaultKind,
    /// Guest program counter after the exit, if it could be read.
    pub pc: Option<u64>,
    /// What cordon can tell about the cause, e.g. "page fault at 0x1ff000
    /// in the stack guard page of vCPU 0".
    pub hint: Option<String>,
    pub status: VcpuStatus,
}

impl std::fmt::Display for VcpuFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vCPU {} fault: {}", self.vcpu, self.kind)?;
        match self.pc {
            Some(pc) => write!(f, " at pc {pc:#x}")?,
            None => write!(f, " at pc unknown")?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Where a vCPU was when the sandbox was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuPc {
    pub vcpu: u32,
    pub pc: u64,
}

/// Counts of guest accesses no device claimed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnclaimedCounts {
    pub port_reads: u64,
    pub port_writes: u64,
    pub mmio_reads: u64,
    pub mmio_writes: u64,
}

impl UnclaimedCounts {
    pub fn total(&self) -> u64 {
        self.port_reads + self.port_writes + self.mmio_reads + self.mmio_writes
    }
}

/// An event from the vm process. The terminal ones end the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmEvent {
    /// Every vCPU is about to enter the guest.
    Started { vcpus: u32 },
    /// The guest wrote `status` to an exit port, with the reason it gave
    /// (`PORT_EXIT_REASON`), if any.
    GuestExit { status: u32, reason: Option<String> },
    /// A vCPU faulted.
    VcpuFault(VcpuFault),
    /// The guest wrote more than `limit` console bytes.
    ConsoleBudget { limit: u64 },
    /// `--timeout` passed; where each vCPU that answered the kick was.
    Timeout { pcs: Vec<VcpuPc> },
    /// The vm process could not boot the guest.
    BootFailed { cause: ExitCause, message: String },
    /// Accesses no device claimed, reported once before the terminal event.
    Unclaimed(UnclaimedCounts),
    /// The device in `slot` was reconnected to its restarted backend and
    /// its rings replayed, or could not be (`error`: why; the device then
    /// shows DEVICE_NEEDS_RESET to the guest).
    DeviceReconnected { slot: usize, error: Option<String> },
}

impl VmEvent {
    /// The event's name, as `--events` tags it.
    pub fn name(&self) -> &'static str {
        match self {
            VmEvent::Started { .. } => "Started",
            VmEvent::GuestExit { .. } => "GuestExit",
            VmEvent::VcpuFault(_) => "VcpuFault",
            VmEvent::ConsoleBudget { .. } => "ConsoleBudget",
            VmEvent::Timeout { .. } => "Timeout",
            VmEvent::BootFailed { .. } => "BootFailed",
            VmEvent::Unclaimed(_) => "Unclaimed",
            VmEvent::DeviceReconnected { .. } => "DeviceReconnected",
        }
    }

    /// Whether this event ends the sandbox.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            VmEvent::Started { .. } | VmEvent::Unclaimed(_) | VmEvent::DeviceReconnected { .. }
        )
    }
}
