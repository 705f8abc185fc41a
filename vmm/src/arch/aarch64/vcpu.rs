//! KVM glue for arm64 vCPUs: creation with the host's preferred target and
//! PSCI 0.2 (so the guest's SYSTEM_OFF reaches cordon as
//! KVM_EXIT_SYSTEM_EVENT), ONE_REG, and the run page's fields `recovery`
//! reads after a failed KVM_RUN.

use kvm_bindings::{kvm_vcpu_init, KVM_ARM_VCPU_PSCI_0_2};
use kvm_ioctls::{VcpuFd, VmFd};

use super::recovery::{VcpuControl, VcpuInit};

/// The init a new vCPU of `vm` gets (and a re-init repeats).
pub fn preferred_init(vm: &VmFd) -> Result<VcpuInit, kvm_ioctls::Error> {
    let mut kvi = kvm_vcpu_init::default();
    vm.get_preferred_target(&mut kvi)?;
    kvi.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
    Ok(VcpuInit {
        target: kvi.target,
        features: kvi.features,
    })
}

/// KVM_ARM_VCPU_INIT with `init`.
pub fn init(vcpu: &VcpuFd, init: &VcpuInit) -> Result<(), kvm_ioctls::Error> {
    let kvi = kvm_vcpu_init {
        target: init.target,
        features: init.features,
    };
    vcpu.vcpu_init(&kvi)
}

/// The run page's `exit_reason` and, for KVM_EXIT_FAIL_ENTRY,
/// `hardware_entry_failure_reason` (stale after a bad-AArch32 EINVAL, and
/// unused then).
pub fn run_page_reasons(vcpu: &mut VcpuFd) -> (u32, u64) {
    let run = vcpu.get_kvm_run();
    let reason = run.exit_reason;
    // SAFETY: `fail_entry` is plain integers: any bit pattern is valid,
    // whichever union member the kernel last wrote.
    let hardware = unsafe {
        run.__bindgen_anon_1
            .fail_entry
            .hardware_entry_failure_reason
    };
    (reason, hardware)
}

impl VcpuControl for VcpuFd {
    fn init(&mut self, vcpu_init: &VcpuInit) -> Result<(), i32> {
        init(self, vcpu_init).map_err(|e| e.errno())
    }

    fn set_reg(&mut self, id: u64, value: u64) -> Result<(), i32> {
        self.set_one_reg(id, &value.to_le_bytes())
            .map(|_| ())
            .map_err(|e| e.errno())
    }
}
