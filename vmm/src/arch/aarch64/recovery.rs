//! What a KVM_RUN on arm64 says about the vCPU, and how cordon brings back
//! a vCPU that KVM invalidated.
//!
//! The kernel's behaviour (`kvm_arch_vcpu_ioctl_run`, measured on 6.1 under
//! QEMU's emulated EL2; DESIGN.md, "Faults"): after an exit, if the guest
//! is in an AArch32 mode the host will not run (`vcpu_mode_is_bad_32bit`),
//! KVM marks the vCPU uninitialised and KVM_RUN fails with EINVAL; the run
//! page's `exit_reason` says KVM_EXIT_FAIL_ENTRY (kvm-ioctls returns Err,
//! so the page must be read) and `hardware_entry_failure_reason` is stale.
//! From then on ONE_REG fails with ENOEXEC and KVM_RUN keeps failing
//! (EINVAL from the same task, ENOEXEC from another). KVM_ARM_VCPU_INIT
//! with the target and features of the vCPU's creation (anything else is
//! EINVAL) resets every register and makes it runnable; cordon then puts
//! it back in its entry state. A KVM_EXIT_FAIL_ENTRY that KVM_RUN returns
//! normally with KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED set is another event
//! (a PMU bound to CPUs the thread left); cordon binds no PMU, so it is
//! fatal there.

use super::regs;
use crate::events::FaultKind;

/// KVM_EXIT_FAIL_ENTRY.
pub const EXIT_FAIL_ENTRY: u32 = 9;
/// KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED, in `hardware_entry_failure_reason`.
pub const FAIL_ENTRY_CPU_UNSUPPORTED: u64 = 1;

/// A KVM_RUN that did not give an exit to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFault {
    /// KVM caught the guest in an AArch32 mode the host does not run and
    /// invalidated the vCPU. Repairable: `recover`.
    BadAArch32,
    /// KVM_RUN failed with ENOEXEC: the vCPU is not initialised (never
    /// was, or was invalidated and then run from another task).
    /// Repairable: `recover`.
    Uninitialized,
    /// KVM_RUN returned KVM_EXIT_FAIL_ENTRY with CPU_UNSUPPORTED: not
    /// repairable by re-initialising.
    CpuUnsupported { hardware_reason: u64 },
    /// Any other KVM_EXIT_FAIL_ENTRY KVM_RUN returned.
    FailEntry { hardware_reason: u64 },
    /// KVM_RUN failed with another errno.
    RunFailed { errno: i32 },
}

impl RunFault {
    /// Whether KVM_ARM_VCPU_INIT can make the vCPU runnable again.
    pub fn repairable(self) -> bool {
        matches!(self, RunFault::BadAArch32 | RunFault::Uninitialized)
    }
}

impl From<RunFault> for FaultKind {
    fn from(fault: RunFault) -> FaultKind {
        match fault {
            RunFault::BadAArch32 => FaultKind::BadAArch32,
            RunFault::Uninitialized => FaultKind::Uninitialized,
            RunFault::CpuUnsupported { hardware_reason } => {
                FaultKind::CpuUnsupported { hardware_reason }
            }
            RunFault::FailEntry { hardware_reason } => FaultKind::FailEntry { hardware_reason },
            RunFault::RunFailed { errno } => FaultKind::RunFailed { errno },
        }
    }
}

/// Reads one KVM_RUN: `result` is its return (Ok, or the errno), and
/// `exit_reason` and `hardware_reason` are the run page's (read even
/// when KVM_RUN failed). None when there is an exit to serve, or the run
/// was only interrupted (EINTR, EAGAIN).
pub fn classify(
    result: Result<(), i32>,
    exit_reason: u32,
    hardware_reason: u64,
) -> Option<RunFault> {
    match result {
        Ok(()) if exit_reason != EXIT_FAIL_ENTRY => None,
        Ok(()) if hardware_reason & FAIL_ENTRY_CPU_UNSUPPORTED != 0 => {
            Some(RunFault::CpuUnsupported { hardware_reason })
        }
        Ok(()) => Some(RunFault::FailEntry { hardware_reason }),
        Err(libc::EINTR) | Err(libc::EAGAIN) => None,
        Err(libc::EINVAL) if exit_reason == EXIT_FAIL_ENTRY => Some(RunFault::BadAArch32),
        Err(libc::ENOEXEC) => Some(RunFault::Uninitialized),
        Err(errno) => Some(RunFault::RunFailed { errno }),
    }
}

/// KVM_ARM_VCPU_INIT's argument: the target KVM_ARM_PREFERRED_TARGET gave
/// and the features cordon asked for at creation. A re-init must repeat
/// both exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInit {
    pub target: u32,
    pub features: [u32; 7],
}

/// Where a vCPU starts (Guest ABI v1 for arm64): PC at the image's entry,
/// x0 the boot info's address, x1 the vCPU's index, SP_EL1 its stack top,
/// PSTATE `regs::ENTRY_PSTATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    pub entry: u64,
    pub boot_info: u64,
    pub index: u64,
    pub stack_top: u64,
}

/// The two vCPU calls recovery needs (KVM's, or a test's).
pub trait VcpuControl {
    /// KVM_ARM_VCPU_INIT; the errno on failure.
    fn init(&mut self, init: &VcpuInit) -> Result<(), i32>;
    /// KVM_SET_ONE_REG of a 64-bit register; the errno on failure.
    fn set_reg(&mut self, id: u64, value: u64) -> Result<(), i32>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("KVM_ARM_VCPU_INIT failed (errno {0})")]
    Init(i32),
    #[error("setting register {id:#x} failed (errno {errno})")]
    Register { id: u64, errno: i32 },
}

/// Puts an initialised vCPU in its entry state.
pub fn enter(vcpu: &mut impl VcpuControl, state: &EntryState) -> Result<(), RecoveryError> {
    for (id, value) in [
        (regs::PSTATE, regs::ENTRY_PSTATE),
        (regs::PC, state.entry),
        (regs::x(0), state.boot_info),
        (regs::x(1), state.index),
        (regs::SP_EL1, state.stack_top),
    ] {
        vcpu.set_reg(id, value)
            .map_err(|errno| RecoveryError::Register { id, errno })?;
    }
    Ok(())
}

/// Brings back a vCPU after a repairable `RunFault`: KVM_ARM_VCPU_INIT
/// with the creation's target and features (which also resets every
/// register), then the entry state. The image is the caller's to reload.
pub fn recover(
    vcpu: &mut impl VcpuControl,
    init: &VcpuInit,
    state: &EntryState,
) -> Result<(), RecoveryError> {
    vcpu.init(init).map_err(RecoveryError::Init)?;
    enter(vcpu, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::VcpuStatus;

    /// The kernel as measured: a vCPU created with `created`, invalidated
    /// when the guest reaches AArch32 mode, ONE_REG refused with ENOEXEC
    /// while invalid, KVM_RUN failing with EINVAL (same task) after that.
    struct FakeKvm {
        created: VcpuInit,
        initialised: bool,
        /// The next run puts the guest in AArch32 User mode.
        guest_goes_aarch32: bool,
        pc: u64,
        pstate: u64,
        exit_reason: u32,
    }

    impl FakeKvm {
        fn new(created: VcpuInit) -> FakeKvm {
            FakeKvm {
                created,
                initialised: false,
                guest_goes_aarch32: false,
                pc: 0,
                pstate: 0,
                exit_reason: 0,
            }
        }

        /// KVM_RUN: Ok with an MMIO exit (6), or the errno.
        fn run(&mut self) -> Result<(), i32> {
            if !self.initialised {
                return Err(libc::ENOEXEC);
            }
            if self.guest_goes_aarch32 {
                self.initialised = false;
                self.pstate = 0x10;
                self.exit_reason = EXIT_FAIL_ENTRY;
                return Err(libc::EINVAL);
            }
            self.exit_reason = 6;
            Ok(())
        }
    }

    impl VcpuControl for FakeKvm {
        fn init(&mut self, init: &VcpuInit) -> Result<(), i32> {
            if *init != self.created {
                return Err(libc::EINVAL);
            }
            self.initialised = true;
            self.guest_goes_aarch32 = false;
            (self.pc, self.pstate) = (0, 0x3c5);
            Ok(())
        }

        fn set_reg(&mut self, id: u64, value: u64) -> Result<(), i32> {
            if !self.initialised {
                return Err(libc::ENOEXEC);
            }
            match id {
                regs::PC => self.pc = value,
                regs::PSTATE => self.pstate = value,
                _ => {}
            }
            Ok(())
        }
    }

    const INIT: VcpuInit = VcpuInit {
        target: 5,
        features: [1 << 2, 0, 0, 0, 0, 0, 0],
    };
    const ENTRY: EntryState = EntryState {
        entry: 0x4020_0000,
        boot_info: 0x4000_0000,
        index: 0,
        stack_top: 0x4400_0000,
    };

    fn run(kvm: &mut FakeKvm) -> Option<RunFault> {
        let result = kvm.run();
        classify(result, kvm.exit_reason, 0xdead)
    }

    #[test]
    fn run_results_are_told_apart() {
        assert_eq!(classify(Ok(()), 6, 0), None);
        assert_eq!(classify(Err(libc::EINTR), 0, 0), None);
        assert_eq!(
            classify(Err(libc::EINVAL), EXIT_FAIL_ENTRY, 0xdead),
            Some(RunFault::BadAArch32)
        );
        // EINVAL without the run page saying FAIL_ENTRY is something else.
        assert_eq!(
            classify(Err(libc::EINVAL), 6, 0),
            Some(RunFault::RunFailed {
                errno: libc::EINVAL
            })
        );
        assert_eq!(
            classify(Err(libc::ENOEXEC), 0, 0),
            Some(RunFault::Uninitialized)
        );
        // A FAIL_ENTRY KVM_RUN returned normally: the PMU case, or not.
        assert_eq!(
            classify(Ok(()), EXIT_FAIL_ENTRY, FAIL_ENTRY_CPU_UNSUPPORTED),
            Some(RunFault::CpuUnsupported { hardware_reason: 1 })
        );
        assert_eq!(
            classify(Ok(()), EXIT_FAIL_ENTRY, 0x20),
            Some(RunFault::FailEntry {
                hardware_reason: 0x20
            })
        );
        assert!(RunFault::BadAArch32.repairable());
        assert!(RunFault::Uninitialized.repairable());
        assert!(!RunFault::CpuUnsupported { hardware_reason: 1 }.repairable());
    }

    #[test]
    fn faults_become_the_neutral_kinds_the_restart_policy_reads() {
        // Repairable here means reset-vcpu may re-init in place.
        for fault in [
            RunFault::BadAArch32,
            RunFault::Uninitialized,
            RunFault::CpuUnsupported { hardware_reason: 1 },
            RunFault::RunFailed {
                errno: libc::EFAULT,
            },
        ] {
            let kind = FaultKind::from(fault);
            assert_eq!(
                kind.status() == VcpuStatus::Poisoned,
                fault.repairable(),
                "{kind}"
            );
        }
        assert_eq!(
            FaultKind::from(RunFault::BadAArch32).to_string(),
            "bad AArch32 mode (KVM invalidated the vCPU)"
        );
    }

    #[test]
    fn a_vcpu_invalidated_in_aarch32_is_recovered_by_the_same_init() {
        let mut kvm = FakeKvm::new(INIT);
        recover(&mut kvm, &INIT, &ENTRY).unwrap();
        assert_eq!(run(&mut kvm), None);
        kvm.guest_goes_aarch32 = true;
        assert_eq!(run(&mut kvm), Some(RunFault::BadAArch32));
        // Invalid now: registers cannot be restored first, and running
        // again fails again.
        assert_eq!(
            enter(&mut kvm, &ENTRY),
            Err(RecoveryError::Register {
                id: regs::PSTATE,
                errno: libc::ENOEXEC
            })
        );
        assert_eq!(run(&mut kvm), Some(RunFault::Uninitialized));
        // Another target or other features are refused; the vCPU stays
        // invalid.
        let other = VcpuInit { target: 6, ..INIT };
        assert_eq!(
            recover(&mut kvm, &other, &ENTRY),
            Err(RecoveryError::Init(libc::EINVAL))
        );
        assert!(!kvm.initialised);
        recover(&mut kvm, &INIT, &ENTRY).unwrap();
        assert_eq!((kvm.pc, kvm.pstate), (ENTRY.entry, regs::ENTRY_PSTATE));
        assert_eq!(run(&mut kvm), None);
    }

    #[test]
    fn a_vcpu_never_initialised_is_reported_and_recovered() {
        let mut kvm = FakeKvm::new(INIT);
        assert_eq!(run(&mut kvm), Some(RunFault::Uninitialized));
        recover(&mut kvm, &INIT, &ENTRY).unwrap();
        assert_eq!(run(&mut kvm), None);
    }
}
