//! Benchmark tools for `bench/run.sh`.
//!
//! [`MiniVm`] is the smallest KVM setup with the entry state of Guest ABI v1
//! (64-bit long mode at CPL3, IOPL 3, IF 0, SSE on, no IDT): the `floor`
//! binary times it and the `probe` binary checks on this host what a guest
//! sees in that state. It shares no code with cordon on purpose: it is the
//! yardstick cordon is measured against.

use std::error::Error;
use std::ffi::CStr;

use kvm_bindings::{kvm_segment, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};

/// Errors of these tools: they only report them.
pub type Res<T> = Result<T, Box<dyn Error>>;

// Guest-physical layout: the structures below 1 MiB, code at 1 MiB (Guest
// ABI v1's lowest image address), the stack growing down from 2 MiB.
const GDT_ADDR: u64 = 0x1000;
/// Guest-physical address of the (zeroed) 64-bit TSS.
pub const TSS_ADDR: u64 = 0x1080;
const TSS_LIMIT: u32 = 0x67;
const PML4_ADDR: u64 = 0x2000;
const PDPT_ADDR: u64 = 0x3000;
const PD_ADDR: u64 = 0x4000;
/// Where the guest code is loaded and entered.
pub const CODE_ADDR: u64 = 0x10_0000;
/// RSP at entry.
pub const STACK_TOP: u64 = 0x20_0000;
/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;
const LARGE_PAGE: u64 = 2 * MIB;

// Selectors: GDT index << 3 | RPL.
const CODE_SEL: u16 = (1 << 3) | 3;
const DATA_SEL: u16 = (2 << 3) | 3;
const TSS_SEL: u16 = 3 << 3;

/// RFLAGS at entry: reserved bit 1 and IOPL 3; IF 0.
pub const ENTRY_RFLAGS: u64 = 0x2 | 0x3000;

/// Guest memory: a shared mapping of a memfd, like cordon's (so both show up
/// as "/memfd:" in smaps). Never unmapped: it lives as long as the process.
pub struct GuestMem {
    ptr: *mut u8,
    len: u64,
}

impl GuestMem {
    /// Maps `len` bytes of a new memfd.
    pub fn new(len: u64) -> Res<Self> {
        let name: &CStr = c"floor-guest-mem";
        // SAFETY: memfd_create reads a NUL-terminated name and returns a new
        // fd or -1; no memory of ours is written.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: fd is the memfd just created and owned by no one else.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: a fresh shared mapping of `len` bytes of our memfd at an
        // address the kernel picks: it aliases no Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            )
        };
        // SAFETY: the mapping holds its own reference to the file; we own fd
        // and close it once.
        unsafe { libc::close(fd) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `bytes` to guest-physical `addr`; call it before any vCPU runs.
    pub fn write(&self, addr: u64, bytes: &[u8]) {
        assert!(
            addr + bytes.len() as u64 <= self.len,
            "write past guest memory"
        );
        // SAFETY: the range is inside the mapping (checked above) and no vCPU
        // runs yet, so nothing else accesses these bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(addr as usize), bytes.len())
        };
    }

    fn write_u64s(&self, addr: u64, words: &[u64]) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.write(addr, &bytes);
    }

    fn region(&self) -> kvm_userspace_memory_region {
        kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: self.len,
            userspace_addr: self.ptr as u64,
        }
    }
}

/// A GDT descriptor from its parts (legacy 8-byte layout).
fn descriptor(base: u64, limit: u32, access: u8, flags: u8) -> u64 {
    let limit = u64::from(limit);
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (u64::from(access) << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (u64::from(flags & 0xf) << 52)
        | (((base >> 24) & 0xff) << 56)
}

/// GDT, TSS and the identity map (2 MiB pages, U/S at every level).
fn write_tables(mem: &GuestMem) {
    let gdt = [
        0,
        descriptor(0, 0xf_ffff, 0xfb, 0xa), // 64-bit code, DPL 3, G|L
        descriptor(0, 0xf_ffff, 0xf3, 0xc), // data, DPL 3, G|DB
        descriptor(TSS_ADDR, TSS_LIMIT, 0x89, 0), // 64-bit TSS, available
        TSS_ADDR >> 32,                     // upper half of the TSS descriptor
    ];
    mem.write_u64s(GDT_ADDR, &gdt);
    // The TSS stays zeroed: its I/O map base 0 points at no bitmap.
    const PRESENT_RW_USER: u64 = 0b111;
    const PAGE_SIZE_BIT: u64 = 1 << 7;
    mem.write_u64s(PML4_ADDR, &[PDPT_ADDR | PRESENT_RW_USER]);
    mem.write_u64s(PDPT_ADDR, &[PD_ADDR | PRESENT_RW_USER]);
    // One page directory maps up to 1 GiB, more than the code and stack need.
    let pages = mem.len.div_ceil(LARGE_PAGE).min(512);
    let pd: Vec<u64> = (0..pages)
        .map(|i| (i * LARGE_PAGE) | PRESENT_RW_USER | PAGE_SIZE_BIT)
        .collect();
    mem.write_u64s(PD_ADDR, &pd);
}

fn segment(selector: u16, type_: u8, l: u8, db: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 3,
        db,
        s: 1,
        l,
        g: 1,
        ..Default::default()
    }
}

/// Guest ABI v1 entry state: long mode at CPL3, no IDT, KVM's CPUID list,
/// RIP at the code, RSP at the stack top, RFLAGS = `ENTRY_RFLAGS`.
fn set_entry_state(kvm: &Kvm, vcpu: &VcpuFd) -> Res<()> {
    let mut sregs = vcpu.get_sregs()?;
    sregs.cs = segment(CODE_SEL, 0xb, 1, 0);
    let data = segment(DATA_SEL, 0x3, 0, 1);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = kvm_segment {
        base: TSS_ADDR,
        limit: TSS_LIMIT,
        selector: TSS_SEL,
        type_: 0xb, // 64-bit TSS, busy
        present: 1,
        ..Default::default()
    };
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = 5 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
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
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs)?;

    vcpu.set_cpuid2(&kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)?)?;

    let mut regs = vcpu.get_regs()?;
    regs.rip = CODE_ADDR;
    regs.rsp = STACK_TOP;
    regs.rflags = ENTRY_RFLAGS;
    vcpu.set_regs(&regs)?;
    Ok(())
}

/// One VM, one memory slot, one vCPU ready to enter `code` at `CODE_ADDR`.
pub struct MiniVm {
    pub kvm: Kvm,
    pub vm: VmFd,
    pub mem: GuestMem,
    pub vcpu: VcpuFd,
}

impl MiniVm {
    /// Opens /dev/kvm and builds the VM with `mem_bytes` of guest memory.
    pub fn new(mem_bytes: u64, code: &[u8]) -> Res<Self> {
        let kvm = Kvm::new()?;
        let vm = kvm.create_vm()?;
        let mem = GuestMem::new(mem_bytes)?;
        // SAFETY: the region is our mapping of `mem.len` bytes, which is never
        // unmapped, so it outlives the VM.
        unsafe { vm.set_user_memory_region(mem.region())? };
        write_tables(&mem);
        mem.write(CODE_ADDR, code);
        let vcpu = vm.create_vcpu(0)?;
        set_entry_state(&kvm, &vcpu)?;
        Ok(Self { kvm, vm, mem, vcpu })
    }

    /// Registers and control registers, for a failure report.
    pub fn describe(&self) -> String {
        match (self.vcpu.get_regs(), self.vcpu.get_sregs()) {
            (Ok(r), Ok(s)) => format!(
                "rip={:#x} rsp={:#x} rflags={:#x} cs={:#x}/dpl{} cr0={:#x} cr4={:#x} efer={:#x}",
                r.rip, r.rsp, r.rflags, s.cs.selector, s.cs.dpl, s.cr0, s.cr4, s.efer
            ),
            (Err(e), _) | (_, Err(e)) => format!("registers unreadable: {e}"),
        }
    }
}
