//! x86_64: page tables, GDT and the vCPU entry state of Guest ABI v1.

pub mod gdt;
pub mod paging;
pub mod vcpu;

/// The ELF machine number images must carry.
pub const ELF_MACHINE: u16 = crate::boot::elf::EM_X86_64;
