//! The seed's failure on real arm64 KVM, and cordon's recovery from it:
//! a guest at EL1 ERETs to AArch32 User mode (SPSR_EL1 = 0x10); KVM, on a
//! host that does not run AArch32 EL0 for guests, invalidates the vCPU.
//! This probe drives `vmm::arch::aarch64` through it: creates a VM and a
//! vCPU as cordon does, runs until the invalidation, checks what the
//! kernel says afterwards (ONE_REG refused, KVM_RUN failing again),
//! recovers with `recovery::recover` and runs the guest again, `CYCLES`
//! times; then a vCPU that was never initialised. Each finding is one line
//! `probe NAME VALUE` (tests/l1_arm64.rs reads them).
//!
//!   cargo build --example aarch32_probe -p vmm --target aarch64-unknown-linux-gnu
//!
//! It needs arm64 KVM (in CI: Debian's arm64 kernel under QEMU's emulated
//! EL2, booted with `allow_mismatched_32bit_el0`).

#[cfg(target_arch = "aarch64")]
fn main() {
    if let Err(e) = arm64::probe() {
        println!("probe error {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "aarch64"))]
fn main() {
    eprintln!("aarch32_probe: arm64 only");
    std::process::exit(2);
}

#[cfg(target_arch = "aarch64")]
mod arm64 {
    use kvm_bindings::kvm_userspace_memory_region;
    use kvm_ioctls::{Kvm, VcpuFd, VmFd};
    use vmm::arch::aarch64::recovery::{self, EntryState, RunFault, VcpuInit};
    use vmm::arch::aarch64::{regs, vcpu};

    const RAM: u64 = 0x4000_0000;
    const RAM_SIZE: usize = 2 << 20;
    /// Invalidate-and-recover rounds.
    const CYCLES: u32 = 3;
    /// KVM_RUNs a round may take before the invalidation (host ticks cause
    /// the exits after which KVM checks the mode).
    const MAX_RUNS: u32 = 10_000;

    /// `mov x0, #0x10; msr spsr_el1, x0; adr x1, t; msr elr_el1, x1; eret;
    /// t: (A32) b .` (assembled with clang --target=aarch64-linux-gnu).
    const GUEST: [u32; 6] = [
        0xd280_0200,
        0xd518_4000,
        0x1000_0061,
        0xd518_4021,
        0xd69f_03e0,
        0xeaff_fffe,
    ];

    const ENTRY: EntryState = EntryState {
        entry: RAM,
        boot_info: RAM + 0x1000,
        index: 0,
        stack_top: RAM + RAM_SIZE as u64,
    };

    fn guest_memory(vm: &VmFd) -> Result<(), String> {
        // SAFETY: a fresh private anonymous mapping; nothing else uses it.
        let host = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RAM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if host == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let code: Vec<u8> = GUEST.iter().flat_map(|w| w.to_le_bytes()).collect();
        // SAFETY: `host` is RAM_SIZE writable bytes; the code is far smaller.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), host.cast::<u8>(), code.len()) };
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: RAM,
            memory_size: RAM_SIZE as u64,
            userspace_addr: host as u64,
        };
        // SAFETY: the mapping lives until the process exits (never unmapped).
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| format!("memory slot: {e}"))
    }

    /// One KVM_RUN, read as `recovery` reads it.
    fn run_once(vcpu: &mut VcpuFd) -> Option<RunFault> {
        let result = vcpu.run().map(|_| ()).map_err(|e| e.errno());
        let (reason, hardware) = vcpu::run_page_reasons(vcpu);
        recovery::classify(result, reason, hardware)
    }

    /// Runs until a fault; how many KVM_RUNs it took.
    fn run_to_fault(vcpu: &mut VcpuFd) -> Result<(RunFault, u32), String> {
        for runs in 1..=MAX_RUNS {
            if let Some(fault) = run_once(vcpu) {
                return Ok((fault, runs));
            }
        }
        Err(format!("no fault in {MAX_RUNS} runs"))
    }

    pub fn probe() -> Result<(), String> {
        let kvm = Kvm::new().map_err(|e| format!("/dev/kvm: {e}"))?;
        let vm = kvm.create_vm().map_err(|e| format!("create VM: {e}"))?;
        guest_memory(&vm)?;
        let init: VcpuInit =
            vcpu::preferred_init(&vm).map_err(|e| format!("preferred target: {e}"))?;
        println!("probe target {}", init.target);
        let mut fd = vm.create_vcpu(0).map_err(|e| format!("create vCPU: {e}"))?;
        recovery::recover(&mut fd, &init, &ENTRY).map_err(|e| format!("first init: {e}"))?;
        for cycle in 0..CYCLES {
            let (fault, runs) = run_to_fault(&mut fd)?;
            println!("probe fault{cycle} {fault:?} after {runs} runs");
            let reg = fd
                .get_one_reg(regs::PC, &mut [0u8; 8])
                .map_err(|e| e.errno());
            println!("probe one-reg{cycle} {}", errno_name(reg.err()));
            let again = run_once(&mut fd);
            println!("probe rerun{cycle} {again:?}");
            recovery::recover(&mut fd, &init, &ENTRY).map_err(|e| format!("recover: {e}"))?;
            println!("probe recovered{cycle} ok");
        }
        // A different target is refused, as the kernel documents.
        let other = VcpuInit {
            target: init.target.wrapping_add(1),
            ..init
        };
        let refused = vcpu::init(&fd, &other).map_err(|e| e.errno());
        println!("probe other-target {}", errno_name(refused.err()));
        // KVM_RUN before KVM_ARM_VCPU_INIT.
        let mut fresh = vm
            .create_vcpu(1)
            .map_err(|e| format!("create vCPU 1: {e}"))?;
        println!("probe uninitialised {:?}", run_once(&mut fresh));
        recovery::recover(&mut fresh, &init, &ENTRY).map_err(|e| format!("init vCPU 1: {e}"))?;
        let (fault, _) = run_to_fault(&mut fresh)?;
        println!("probe uninitialised-then-init {fault:?}");
        println!("probe done ok");
        Ok(())
    }

    fn errno_name(errno: Option<i32>) -> &'static str {
        match errno {
            None => "ok",
            Some(libc::ENOEXEC) => "ENOEXEC",
            Some(libc::EINVAL) => "EINVAL",
            Some(_) => "other",
        }
    }
}
