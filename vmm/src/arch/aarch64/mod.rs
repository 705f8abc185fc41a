//! arm64: vCPU creation (KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT), the
//! registers of Guest ABI v1 for arm64 through ONE_REG, and recovery of a
//! vCPU that KVM invalidated (a guest caught in an AArch32 mode the host
//! will not run). See docs/guest-abi.md, "arm64", and DESIGN.md, "Faults".
//!
//! `regs` and `recovery` are pure (unit-tested on the x86_64 host by
//! cross-building and running under qemu-aarch64); `vcpu` is the KVM glue.

pub mod recovery;
pub mod regs;
#[cfg(target_arch = "aarch64")]
pub mod vcpu;

/// ELF machine of arm64 images (EM_AARCH64).
pub const ELF_MACHINE: u16 = 183;
