//! ONE_REG ids of the arm64 core registers cordon sets, and the entry
//! PSTATE of Guest ABI v1 for arm64.
//!
//! A core register's id is KVM_REG_ARM64 | KVM_REG_SIZE_U64 |
//! KVM_REG_ARM_CORE | (its byte offset in `struct kvm_regs` / 4), as the
//! kernel's arch/arm64/include/uapi/asm/kvm.h defines it.

/// KVM_REG_ARM64 (arch id 0x6000 in the top 16 bits).
const KVM_REG_ARM64: u64 = 0x6000_0000_0000_0000;
/// KVM_REG_SIZE_U64 (size code 3 at bits 52..56).
const KVM_REG_SIZE_U64: u64 = 0x0030_0000_0000_0000;
/// KVM_REG_ARM_CORE (coprocessor 0x0010 at bits 16..32).
const KVM_REG_ARM_CORE: u64 = 0x0010_0000;

/// Byte offsets in `struct kvm_regs`: `user_pt_regs regs` (x0..x30, sp,
/// pc, pstate), then sp_el1, elr_el1, spsr[5].
const X0_OFFSET: u64 = 0;
const SP_EL0_OFFSET: u64 = 31 * 8;
const PC_OFFSET: u64 = 32 * 8;
const PSTATE_OFFSET: u64 = 33 * 8;
const SP_EL1_OFFSET: u64 = 34 * 8;

const fn core_reg(offset: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4)
}

/// x`n` (n < 31).
pub const fn x(n: u64) -> u64 {
    core_reg(X0_OFFSET + n * 8)
}

pub const SP_EL0: u64 = core_reg(SP_EL0_OFFSET);
pub const PC: u64 = core_reg(PC_OFFSET);
pub const PSTATE: u64 = core_reg(PSTATE_OFFSET);
pub const SP_EL1: u64 = core_reg(SP_EL1_OFFSET);

/// PSTATE.M for EL1 using SP_EL1 (EL1h).
const PSTATE_MODE_EL1H: u64 = 0b0101;
/// PSTATE.{D,A,I,F}: every exception masked.
const PSTATE_DAIF: u64 = 0b1111 << 6;
/// The entry PSTATE: AArch64 EL1h, exceptions masked (0x3c5), as Linux's
/// arm64 boot protocol asks too.
pub const ENTRY_PSTATE: u64 = PSTATE_MODE_EL1H | PSTATE_DAIF;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_kernels() {
        // Values from the kernel's uapi (and QEMU's, crosvm's tables).
        assert_eq!(x(0), 0x6030_0000_0010_0000);
        assert_eq!(x(30), 0x6030_0000_0010_003c);
        assert_eq!(SP_EL0, 0x6030_0000_0010_003e);
        assert_eq!(PC, 0x6030_0000_0010_0040);
        assert_eq!(PSTATE, 0x6030_0000_0010_0042);
        assert_eq!(SP_EL1, 0x6030_0000_0010_0044);
        assert_eq!(ENTRY_PSTATE, 0x3c5);
    }
}
