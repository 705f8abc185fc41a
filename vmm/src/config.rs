//! The configuration a supervisor sends its vm process, as one typed message.
//!
//! Nothing here is passed on a command line: the vm process is started with a
//! fixed argv and reads this from its control socket.

use serde::{Deserialize, Serialize};

/// Default guest memory, MiB.
pub const DEFAULT_MEM_MIB: u64 = 64;
/// Smallest guest memory, MiB: the system area, an image and one stack.
pub const MIN_MEM_MIB: u64 = 2;
/// Most vCPUs a sandbox may have (KVM's own limit may be lower).
pub const MAX_VCPUS: u32 = 64;
/// Default console budget: bytes the guest may write to the debug console.
pub const DEFAULT_CONSOLE_BUDGET: u64 = 1 << 20;

/// Descriptor numbers of the resources the vm process inherits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmFds {
    /// /dev/kvm, opened read-write by the supervisor.
    pub kvm: i32,
    /// The guest memory memfd (sealed against resizing).
    pub memory: i32,
    /// The image file, opened read-only (an ELF unikernel); None for a Wasm
    /// module, which runs in the Wasm runtime this binary carries (the vm
    /// process is a re-execution of the supervisor's own executable).
    pub image: Option<i32>,
    /// The Wasm module (opened read-only) the runtime runs, if any.
    pub module: Option<i32>,
}

/// Everything the vm process needs to boot a guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    /// `log::LevelFilter` as text ("warn", "debug", ...).
    pub log_level: String,
    /// Guest memory in bytes (a multiple of 1 MiB).
    pub mem_bytes: u64,
    pub vcpus: u32,
    /// Milliseconds after boot at which the sandbox is stopped.
    pub timeout_ms: Option<u64>,
    /// Bytes the guest may write to the debug console.
    pub console_budget: u64,
    /// The guest's argv; argv[0] is the image's file name.
    pub args: Vec<String>,
    /// The guest's environment, "KEY=VALUE" each.
    pub env: Vec<String>,
    /// 0 on the first boot.
    pub boot_counter: u64,
    /// `--on-vcpu-fault`: under `reset-vcpu` a repairable fault of a
    /// single vCPU waits for the supervisor's answer instead of ending.
    pub on_vcpu_fault: crate::policy::FaultAction,
    /// Testing only: vCPU 0 enters with CS.D set beside CS.L, which VMX and
    /// SVM refuse (KVM_EXIT_FAIL_ENTRY), so tests can produce a failed
    /// entry; a `reset-vcpu` reload enters correctly. The supervisor sets
    /// it for the first boot only.
    pub test_bad_entry_state: bool,
    /// `--fuel` for the Wasm runtime; 0 for no limit.
    pub fuel: u64,
    pub fds: VmFds,
    /// KVM's supported CPUID (x86_64; empty elsewhere). The supervisor reads
    /// it from /dev/kvm while the vm process is still starting, which takes
    /// ~0.3 ms off the vm process's path to the first KVM_RUN.
    pub cpuid: Vec<CpuidEntry>,
    /// The virtio devices, in slot order.
    pub devices: Vec<DeviceSpec>,
}

/// A virtio device as the vm process sees it: a kind and a connected
/// vhost-user socket to its backend (inherited, at `socket_fd`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    pub kind: protocol::device::DeviceKind,
    /// For logs: "console0", "block1", "rng".
    pub name: String,
    pub socket_fd: i32,
}

/// One CPUID leaf as KVM reports it (`kvm_cpuid_entry2`, without padding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuidEntry {
    pub function: u32,
    pub index: u32,
    pub flags: u32,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}
