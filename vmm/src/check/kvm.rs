//! The KVM half of `cordon check`: /dev/kvm, its API version, the kind of
//! KVM behind it and the capabilities cordon uses.

use std::fmt;
use std::io;

use kvm_ioctls::{Cap, Kvm};

use super::CheckError;

/// The KVM API version every kernel since 2.6.22 reports.
pub const KVM_API_VERSION: i32 = 12;

/// What kind of KVM serves /dev/kvm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvmKind {
    /// Intel VMX (`kvm_intel`).
    Vmx,
    /// AMD SVM (`kvm_amd`).
    Svm,
    /// `kvm_pvm`: shadow paging without hardware virtualization, as in
    /// nested clouds. Runs CPL3 code natively, emulates ring 0.
    Pvm,
    /// arm64 hardware virtualization.
    Arm64,
    /// No module or CPU flag we recognise.
    Unknown,
}

impl KvmKind {
    /// Whether ring-0 guest code (a Linux kernel) runs natively.
    pub fn runs_ring0_natively(self) -> bool {
        matches!(self, KvmKind::Vmx | KvmKind::Svm | KvmKind::Arm64)
    }
}

impl fmt::Display for KvmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvmKind::Vmx => "hardware (VMX, kvm_intel)",
            KvmKind::Svm => "hardware (SVM, kvm_amd)",
            KvmKind::Pvm => "kvm_pvm (shadow paging)",
            KvmKind::Arm64 => "hardware (arm64)",
            KvmKind::Unknown => "unknown",
        })
    }
}

/// What a capability is needed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Unikernels (Guest ABI v1) cannot run without it.
    Required,
    /// vhost-user devices (ioeventfd, irqfd).
    Devices,
    /// Linux guests (in-kernel irqchip, Intel TSS).
    LinuxGuests,
    /// Nice to have; cordon has a fallback.
    Optional,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Need::Required => "required",
            Need::Devices => "for devices",
            Need::LinuxGuests => "for Linux guests",
            Need::Optional => "optional",
        })
    }
}

/// One KVM capability and whether the host has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapStatus {
    /// The KVM_CAP_* name.
    pub name: &'static str,
    /// Whether KVM_CHECK_EXTENSION reported it.
    pub present: bool,
    /// What cordon needs it for.
    pub need: Need,
}

/// What an open /dev/kvm told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvmInfo {
    /// KVM_GET_API_VERSION; cordon needs [`KVM_API_VERSION`].
    pub api_version: i32,
    /// The capabilities cordon uses.
    pub caps: Vec<CapStatus>,
    /// KVM_CAP_MAX_VCPUS (KVM_CAP_NR_VCPUS, or 4, where that is 0).
    pub max_vcpus: usize,
}

impl KvmInfo {
    /// The capabilities needed for `need` that the host lacks.
    pub fn missing(&self, need: Need) -> impl Iterator<Item = &CapStatus> {
        self.caps
            .iter()
            .filter(move |c| c.need == need && !c.present)
    }
}

/// The KVM part of the host report.
#[derive(Debug)]
pub struct KvmReport {
    /// The kind of KVM, from sysfs and /proc/cpuinfo.
    pub kind: KvmKind,
    /// /dev/kvm opened read-write and queried, or why not.
    pub open: Result<KvmInfo, CheckError>,
}

impl KvmReport {
    /// /dev/kvm opens, speaks API 12 and has every required capability.
    pub fn usable(&self) -> bool {
        self.open.as_ref().is_ok_and(|info| {
            info.api_version == KVM_API_VERSION && info.missing(Need::Required).next().is_none()
        })
    }
}

/// The capabilities cordon checks, with what each is for.
fn wanted_caps() -> Vec<(Cap, &'static str, Need)> {
    vec![
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY", Need::Required),
        (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT", Need::Required),
        #[cfg(target_arch = "x86_64")]
        (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID", Need::Required),
        (Cap::Ioeventfd, "KVM_CAP_IOEVENTFD", Need::Devices),
        (Cap::Irqfd, "KVM_CAP_IRQFD", Need::Devices),
        (Cap::Irqchip, "KVM_CAP_IRQCHIP", Need::LinuxGuests),
        #[cfg(target_arch = "x86_64")]
        (Cap::SetTssAddr, "KVM_CAP_SET_TSS_ADDR", Need::LinuxGuests),
        #[cfg(target_arch = "x86_64")]
        (Cap::GetTscKhz, "KVM_CAP_GET_TSC_KHZ", Need::Optional),
    ]
}

/// Probes /dev/kvm and the kind of KVM behind it.
pub fn probe() -> KvmReport {
    KvmReport {
        kind: detect_kind(),
        open: probe_dev_kvm(),
    }
}

fn probe_dev_kvm() -> Result<KvmInfo, CheckError> {
    // Kvm::new opens /dev/kvm with O_RDWR | O_CLOEXEC.
    let kvm =
        Kvm::new().map_err(|e| CheckError::OpenKvm(io::Error::from_raw_os_error(e.errno())))?;
    let caps = wanted_caps()
        .into_iter()
        .map(|(cap, name, need)| CapStatus {
            name,
            present: kvm.check_extension(cap),
            need,
        })
        .collect();
    Ok(KvmInfo {
        api_version: kvm.get_api_version(),
        caps,
        max_vcpus: kvm.get_max_vcpus(),
    })
}

#[cfg(target_arch = "aarch64")]
fn detect_kind() -> KvmKind {
    KvmKind::Arm64
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_kind() -> KvmKind {
    KvmKind::Unknown
}

#[cfg(target_arch = "x86_64")]
fn detect_kind() -> KvmKind {
    let module = |name: &str| std::path::Path::new("/sys/module").join(name).exists();
    // An unreadable /proc/cpuinfo only removes one piece of evidence.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    classify(&KindEvidence {
        pvm: module("kvm_pvm"),
        intel: module("kvm_intel"),
        amd: module("kvm_amd"),
        vmx: has_cpu_flag(&cpuinfo, "vmx"),
        svm: has_cpu_flag(&cpuinfo, "svm"),
    })
}

/// What the x86 host shows about its KVM vendor module.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
struct KindEvidence {
    /// /sys/module/kvm_pvm exists.
    pvm: bool,
    /// /sys/module/kvm_intel exists.
    intel: bool,
    /// /sys/module/kvm_amd exists.
    amd: bool,
    /// /proc/cpuinfo lists `vmx`.
    vmx: bool,
    /// /proc/cpuinfo lists `svm`.
    svm: bool,
}

/// Picks the KVM kind. Only one vendor module can register with KVM, but a
/// built-in module keeps its /sys/module directory even when its init failed
/// (no VMX on this CPU), so a module counts first where the CPU flag agrees.
/// `kvm_pvm` comes first: it needs no flag, and if it shares the host with a
/// hardware module, assuming the slower one is the safe answer.
#[cfg(target_arch = "x86_64")]
fn classify(e: &KindEvidence) -> KvmKind {
    let order = [
        (e.pvm, KvmKind::Pvm),
        (e.intel && e.vmx, KvmKind::Vmx),
        (e.amd && e.svm, KvmKind::Svm),
        (e.vmx, KvmKind::Vmx),
        (e.svm, KvmKind::Svm),
        (e.intel, KvmKind::Vmx),
        (e.amd, KvmKind::Svm),
    ];
    order
        .into_iter()
        .find_map(|(seen, kind)| seen.then_some(kind))
        .unwrap_or(KvmKind::Unknown)
}

/// Whether the `flags` line of /proc/cpuinfo text lists `flag` as a word.
#[cfg(target_arch = "x86_64")]
fn has_cpu_flag(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim() == "flags")
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == flag))
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    const INTEL: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\n\
        flags\t\t: fpu vme de pse tsc msr vmx smx est\nbugs\t\t: spectre_v1\n";
    const AMD: &str = "processor\t: 0\nflags\t\t: fpu sse2 svm extapic svm_lock\n";
    const GUEST: &str = "processor\t: 0\nflags\t\t: fpu sse2 hypervisor lahf_lm\n\
        vmx flags\t: vnmi preemption_timer\n";

    #[test]
    fn cpu_flags_are_whole_words_on_the_flags_line() {
        assert!(has_cpu_flag(INTEL, "vmx"));
        assert!(!has_cpu_flag(INTEL, "svm"));
        assert!(has_cpu_flag(AMD, "svm"));
        assert!(!has_cpu_flag(AMD, "svm_l"));
        // "vmx flags" is another key; "hypervisor" is not "vmx".
        assert!(!has_cpu_flag(GUEST, "vmx"));
        assert!(!has_cpu_flag(GUEST, "preemption_timer"));
        assert!(!has_cpu_flag("", "vmx"));
    }

    /// Evidence from words: "pvm intel amd vmx svm".
    fn seen(words: &str) -> KindEvidence {
        let has = |w: &str| words.split_whitespace().any(|s| s == w);
        KindEvidence {
            pvm: has("pvm"),
            intel: has("intel"),
            amd: has("amd"),
            vmx: has("vmx"),
            svm: has("svm"),
        }
    }

    #[test]
    fn pvm_wins_and_modules_need_their_flag_first() {
        let cases = [
            ("", KvmKind::Unknown),
            ("pvm", KvmKind::Pvm),
            ("pvm intel vmx", KvmKind::Pvm),
            ("intel vmx", KvmKind::Vmx),
            // Built-in kvm_intel on an AMD CPU: the flag decides.
            ("intel amd svm", KvmKind::Svm),
            ("vmx", KvmKind::Vmx),
            ("amd", KvmKind::Svm),
        ];
        for (words, kind) in cases {
            assert_eq!(classify(&seen(words)), kind, "{words:?}");
        }
    }

    #[test]
    fn only_hardware_runs_ring0() {
        assert!(KvmKind::Vmx.runs_ring0_natively());
        assert!(KvmKind::Arm64.runs_ring0_natively());
        assert!(!KvmKind::Pvm.runs_ring0_natively());
        assert!(!KvmKind::Unknown.runs_ring0_natively());
    }
}
