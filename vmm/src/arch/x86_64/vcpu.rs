//! Puts an x86_64 vCPU in Guest ABI v1's entry state.

use kvm_bindings::{kvm_cpuid_entry2, kvm_fpu, kvm_regs, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd};

use crate::config::CpuidEntry;

use super::gdt;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const RFLAGS_RESERVED: u64 = 1 << 1;
const RFLAGS_IOPL3: u64 = 3 << 12;

/// Where a vCPU starts.
#[derive(Clone, Copy, Debug)]
pub struct EntryState {
    pub index: u32,
    pub entry: u64,
    pub stack_top: u64,
    pub boot_info: u64,
    pub page_table_root: u64,
    pub gdt_addr: u64,
    pub tss_addr: u64,
}

/// Sets vCPU `index`'s CPUID: once, before it first runs (KVM refuses a
/// change afterwards).
pub fn set_cpuid(vcpu: &VcpuFd, cpuid: &CpuId, index: u32) -> Result<(), kvm_ioctls::Error> {
    vcpu.set_cpuid2(&vcpu_cpuid(cpuid, index))
}

/// Sets segments, control registers, general registers and FPU state: at
/// boot, and again when `reset-vcpu` restarts the vCPU.
pub fn set_entry_state(vcpu: &VcpuFd, state: &EntryState) -> Result<(), kvm_ioctls::Error> {
    let mut sregs = vcpu.get_sregs()?;
    let data = gdt::data_segment();
    sregs.cs = gdt::code_segment();
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = gdt::task_segment(state.tss_addr);
    sregs.gdt = gdt::gdtr(state.gdt_addr);
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = state.page_table_root;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA | EFER_NXE;
    vcpu.set_sregs(&sregs)?;
    vcpu.set_regs(&kvm_regs {
        rip: state.entry,
        rsp: state.stack_top,
        rdi: state.boot_info,
        rsi: u64::from(state.index),
        rflags: RFLAGS_RESERVED | RFLAGS_IOPL3,
        ..Default::default()
    })?;
    vcpu.set_fpu(&kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    })
}

/// KVM's supported CPUID, as the supervisor sends it.
pub fn supported_cpuid(kvm: &Kvm) -> Result<Vec<CpuidEntry>, kvm_ioctls::Error> {
    let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)?;
    let entries = cpuid.as_slice().iter().map(|e| CpuidEntry {
        function: e.function,
        index: e.index,
        flags: e.flags,
        eax: e.eax,
        ebx: e.ebx,
        ecx: e.ecx,
        edx: e.edx,
    });
    Ok(entries.collect())
}

/// `entries` as KVM takes them.
pub fn to_kvm_cpuid(entries: &[CpuidEntry]) -> Result<CpuId, vmm_sys_util::fam::Error> {
    let kvm_entries: Vec<kvm_cpuid_entry2> = entries
        .iter()
        .map(|e| kvm_cpuid_entry2 {
            function: e.function,
            index: e.index,
            flags: e.flags,
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
            ..Default::default()
        })
        .collect();
    CpuId::from_entries(&kvm_entries)
}

/// KVM's supported CPUID with this vCPU's APIC id filled in.
fn vcpu_cpuid(supported: &CpuId, index: u32) -> CpuId {
    let mut cpuid = supported.clone();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            1 => entry.ebx = (entry.ebx & 0x00ff_ffff) | (index << 24),
            0xb | 0x1f => entry.edx = index,
            _ => {}
        }
    }
    cpuid
}
