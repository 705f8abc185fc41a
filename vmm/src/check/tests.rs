use super::*;

const MEMINFO: &str = "MemTotal:        8029876 kB\nMemFree:         1234567 kB\n\
    MemAvailable:    5000000 kB\n";

#[test]
fn mem_total_is_parsed_in_kib() {
    assert_eq!(parse_mem_total_kib(MEMINFO), Some(8029876));
    assert_eq!(parse_mem_total_kib("MemFree: 1 kB\n"), None);
    assert_eq!(parse_mem_total_kib("MemTotal: lots kB\n"), None);
    assert_eq!(parse_mem_total_kib("MemTotal: 12 MB\n"), None);
}

#[test]
fn cpu_lists_are_counted() {
    assert_eq!(count_cpu_list("0-1\n"), Some(2));
    assert_eq!(count_cpu_list("0"), Some(1));
    assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
    assert_eq!(count_cpu_list(""), Some(0));
    assert_eq!(count_cpu_list("3-1"), None);
    assert_eq!(count_cpu_list("0-x"), None);
}

fn cap(name: &'static str, present: bool, need: Need) -> CapStatus {
    CapStatus {
        name,
        present,
        need,
    }
}

fn report(kind: KvmKind, caps: Vec<CapStatus>) -> HostReport {
    HostReport {
        kvm: KvmReport {
            kind,
            open: Ok(KvmInfo {
                api_version: KVM_API_VERSION,
                caps,
                max_vcpus: 1024,
            }),
        },
        jail: JailReport {
            landlock: Ok(Landlock::Abi(6)),
            seccomp: Ok(()),
            userns: Ok(UserNs {
                max: 100,
                unprivileged: None,
            }),
            cgroup: CgroupVersion::V1Hybrid,
            controllers: Ok(jail::Hierarchy::V2 {
                base: "/sys/fs/cgroup/user.slice".into(),
            }),
            cgroup_writable: true,
        },
        mem_total_kib: Ok(8 * 1024 * 1024),
        online_cpus: Ok(2),
    }
}

fn full_caps() -> Vec<CapStatus> {
    vec![
        cap("KVM_CAP_USER_MEMORY", true, Need::Required),
        cap("KVM_CAP_IOEVENTFD", true, Need::Devices),
        cap("KVM_CAP_IRQCHIP", true, Need::LinuxGuests),
    ]
}

/// The value column of the line whose label is `label`.
fn value<'a>(text: &'a str, label: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in\n{text}"));
    // Two spaces, the label padded to LABEL, one space, the value.
    let bytes = line.as_bytes();
    assert_eq!(bytes[2 + LABEL], b' ', "{line:?}");
    assert_ne!(bytes[3 + LABEL], b' ', "{line:?}");
    line[3 + LABEL..].trim_end()
}

#[test]
fn a_missing_jail_part_stops_guests_and_is_named() {
    let mut r = report(KvmKind::Pvm, full_caps());
    assert_eq!(value(&r.to_string(), "jail"), "yes");
    r.jail.cgroup_writable = false;
    r.jail.landlock = Ok(Landlock::Disabled);
    assert!(!r.can_run_guests());
    let text = r.to_string();
    assert_eq!(
        value(&text, "jail"),
        "no (missing Landlock, a cgroup this user may write)"
    );
    assert!(
        value(&text, "unikernels").contains("only --no-jail"),
        "{text}"
    );
}

#[test]
fn pvm_runs_unikernels_but_not_linux() {
    let r = report(KvmKind::Pvm, full_caps());
    assert!(r.can_run_guests());
    assert!(r.linux_guests().is_err());
    let text = r.to_string();
    assert_eq!(value(&text, "kind"), "kvm_pvm (shadow paging)");
    assert_eq!(value(&text, "unikernels (Guest ABI v1, CPL3)"), "yes");
    assert!(value(&text, "Linux guests").starts_with("no (kvm_pvm"));
    assert_eq!(value(&text, "API version"), "12");
    assert_eq!(value(&text, "KVM_CAP_USER_MEMORY"), "ok       required");
    assert_eq!(value(&text, "max vCPUs"), "1024");
    assert_eq!(value(&text, "Landlock"), "ABI 6");
    assert_eq!(value(&text, "cgroup"), "v1 hybrid");
    assert_eq!(value(&text, "memory"), "8.0 GiB");
    assert_eq!(value(&text, "online CPUs"), "2");
}

#[test]
fn hardware_runs_linux_when_its_caps_are_there() {
    let r = report(KvmKind::Vmx, full_caps());
    assert_eq!(r.linux_guests(), Ok(()));
    assert_eq!(value(&r.to_string(), "Linux guests"), "yes");
    let mut caps = full_caps();
    caps[2].present = false;
    let r = report(KvmKind::Svm, caps);
    assert!(r.can_run_guests());
    assert_eq!(r.linux_guests(), Err("missing KVM_CAP_IRQCHIP".to_string()));
    assert_eq!(
        value(&r.to_string(), "KVM_CAP_IRQCHIP"),
        "missing  for Linux guests"
    );
}

#[test]
fn missing_required_cap_or_api_fails_the_check() {
    let mut caps = full_caps();
    caps[0].present = false;
    assert!(!report(KvmKind::Vmx, caps).can_run_guests());
    let mut r = report(KvmKind::Vmx, full_caps());
    if let Ok(info) = &mut r.kvm.open {
        info.api_version = 11;
    }
    assert!(!r.can_run_guests());
    assert_eq!(value(&r.to_string(), "API version"), "11 (need 12)");
}

#[test]
fn failures_say_why() {
    let mut r = report(KvmKind::Unknown, full_caps());
    r.kvm.open = Err(CheckError::OpenKvm(io::Error::from_raw_os_error(
        libc::ENOENT,
    )));
    r.jail.seccomp = Err(CheckError::Syscall {
        call: "seccomp",
        source: io::Error::from_raw_os_error(libc::EINVAL),
    });
    r.mem_total_kib = Err(CheckError::Parse {
        path: "/proc/meminfo",
        what: "MemTotal",
    });
    assert!(!r.can_run_guests());
    let text = r.to_string();
    let kvm = value(&text, "/dev/kvm");
    assert!(kvm.starts_with("missing (cannot open /dev/kvm: "), "{kvm}");
    assert!(kvm.contains("No such file or directory"), "{kvm}");
    assert!(value(&text, "seccomp filters").starts_with("missing (seccomp failed: "));
    assert_eq!(
        value(&text, "memory"),
        "unknown (/proc/meminfo: no MemTotal found)"
    );
    assert_eq!(value(&text, "unikernels"), "no (KVM is not usable)");
    assert_eq!(value(&text, "Linux guests"), "no (KVM is not usable)");
    assert!(!text.contains("KVM_CAP"));
}

/// Prints this host's report: `cargo test -p vmm check::tests::print -- --ignored --nocapture`.
#[test]
#[ignore = "probes /dev/kvm and the host"]
fn print_host_report() {
    let r = probe();
    println!("{r}");
    println!("can_run_guests: {}", r.can_run_guests());
}
