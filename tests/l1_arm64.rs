//! The seed's failure on real arm64 KVM, one level down: Debian's arm64
//! kernel as an emulated L1 machine (`qemu-system-aarch64 -accel tcg -M
//! virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on`, so KVM
//! has EL2) booted with `allow_mismatched_32bit_el0`, runs
//! vmm/examples/aarch32_probe.rs (static, built for arm64 by
//! scripts/test.sh's "aarch64 unit tests" stage): a guest at EL1 ERETs to
//! AArch32 User mode, KVM invalidates the vCPU, and `vmm::arch::aarch64`
//! recovers it with KVM_ARM_VCPU_INIT, three times; then a vCPU run before
//! its init. Then the same through cordon itself (a static arm64 build,
//! jailed as on any host): guest-images/aarch64/aarch32-escape under each
//! restart policy, the two ways an arm64 guest ends on its own (the exit
//! register, PSCI SYSTEM_OFF), and `--timeout`.

mod emulated;

use emulated::cases::{self, Case};
use emulated::{Initramfs, Kernel, Machine, Scratch};
use std::path::PathBuf;
use std::time::Duration;

/// A binary of the arm64 build scripts/test.sh makes ("aarch64 unit
/// tests" stage).
fn arm64_binary(path: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/aarch64-check/aarch64-unknown-linux-gnu/debug")
        .join(path);
    assert!(
        path.exists(),
        "{} is missing: run the \"aarch64 unit tests\" stage of scripts/test.sh",
        path.display()
    );
    path
}

fn probe_binary() -> PathBuf {
    arm64_binary("examples/aarch32_probe")
}

/// The emulated arm64 machine with KVM, booting `initrd`.
fn l1(kernel: &Kernel, initrd: &std::path::Path) -> Machine {
    let args = [
        "-accel",
        "tcg",
        "-M",
        "virt,virtualization=on,gic-version=3",
        "-cpu",
        "max,pauth-impdef=on",
        "-m",
        "1G",
    ];
    Machine::new("qemu-system-aarch64", &args, &kernel.image(), initrd)
        .cmdline("console=ttyAMA0 allow_mismatched_32bit_el0")
        .timeout(Duration::from_secs(180))
}

/// guest-images/aarch64/`name`.S, assembled and linked with clang and lld
/// (scripts/test.sh installs both) into `dir`.
fn arm64_guest(name: &str, dir: &std::path::Path) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guest-images/aarch64");
    let out = dir.join(name);
    let status = std::process::Command::new("clang")
        .args([
            "--target=aarch64-linux-gnu",
            "-nostdlib",
            "-static",
            "-fuse-ld=lld",
        ])
        .arg(format!("-I{}", src.display()))
        .arg(format!("-Wl,-T,{}", src.join("link.ld").display()))
        .arg("-Wl,--build-id=none")
        .arg("-o")
        .arg(&out)
        .arg(src.join(format!("{name}.S")))
        .status()
        .expect("clang");
    assert!(status.success(), "building {name} failed");
    out
}

#[test]
fn kvm_invalidates_an_aarch32_guest_and_vcpu_init_recovers_it() {
    let kernel = Kernel::debian_arm64();
    let scratch = Scratch::new("l1-arm64");
    let mut initramfs = Initramfs::new(&kernel, &scratch.path("initrd")).expect("initramfs");
    initramfs
        .host_file("/bin/aarch32_probe", &probe_binary(), 0o755)
        .expect("probe");
    let initrd = initramfs
        .finish(
            r#"
[ -e /dev/kvm ] || { mark no-kvm; exit 1; }
/bin/aarch32_probe > /tmp/out 2>&1 && s=0 || s=$?
while read -r line; do mark $line; done < /tmp/out
mark probe-status "$s"
"#,
        )
        .expect("finish initramfs");
    let outcome = l1(&kernel, &initrd).run();
    let report = outcome.report();
    println!("{report}");
    outcome.expect_clean_exit();
    assert_eq!(outcome.expect_mark("probe-status"), "0", "{report}");
    // Every probe line is marked `probe KEY VALUE...`.
    let probe: Vec<&str> = outcome
        .marks()
        .iter()
        .filter(|m| m.name == "probe")
        .map(|m| m.value.as_str())
        .collect();
    let has = |line: &str| probe.iter().any(|l| l.starts_with(line));
    for cycle in 0..3 {
        assert!(has(&format!("fault{cycle} BadAArch32 after")), "{report}");
        // While invalid, ONE_REG is refused and KVM_RUN fails again.
        assert!(has(&format!("one-reg{cycle} ENOEXEC")), "{report}");
        assert!(has(&format!("rerun{cycle} Some(")), "{report}");
        assert!(has(&format!("recovered{cycle} ok")), "{report}");
    }
    assert!(has("other-target EINVAL"), "{report}");
    assert!(has("uninitialised Some(Uninitialized)"), "{report}");
    assert!(has("uninitialised-then-init BadAArch32"), "{report}");
    assert!(has("done ok"), "{report}");
}

/// Runs cordon in the emulated machine once per case; each case marks its
/// exit status and every line it printed.
const CASES: &[(&str, &str)] = &[
    ("stop", "/escape"),
    (
        "reset",
        "--on-vcpu-fault reset-vcpu --max-restarts 2 /escape",
    ),
    ("reboot", "--on-vcpu-fault reboot --max-restarts 1 /escape"),
    ("exit-register", "/exit-status"),
    ("off", "/psci-off"),
    ("timeout", "--timeout 1 /spin"),
];

#[test]
fn cordon_applies_its_restart_policy_to_an_invalidated_arm64_vcpu() {
    let kernel = Kernel::debian_arm64();
    let scratch = Scratch::new("l1-arm64-cordon");
    let mut initramfs = Initramfs::new(&kernel, &scratch.path("initrd")).expect("initramfs");
    initramfs
        .host_file("/bin/cordon", &arm64_binary("cordon"), 0o755)
        .expect("cordon");
    for (guest, at) in [
        ("aarch32-escape", "/escape"),
        ("exit-status", "/exit-status"),
        ("psci-off", "/psci-off"),
        ("spin", "/spin"),
    ] {
        initramfs
            .host_file(at, &arm64_guest(guest, &scratch.path("")), 0o755)
            .expect("guest");
    }
    let script = cases::script(CASES);
    let initrd = initramfs.finish(&script).expect("finish initramfs");
    let outcome = l1(&kernel, &initrd).run();
    let report = outcome.report();
    println!("{report}");
    outcome.expect_clean_exit();
    // The two ways an arm64 guest ends on its own.
    let exit = Case::of(&outcome, "exit-register");
    assert_eq!(
        (exit.status, exit.out.as_slice()),
        ("7", ["exit-status: ending with 7"].as_slice()),
        "{report}"
    );
    let off = Case::of(&outcome, "off");
    assert_eq!(
        (off.status, off.out.as_slice()),
        ("0", ["psci-off: powering off"].as_slice()),
        "{report}"
    );
    // --timeout kicks the vCPU out of the guest and says where it was.
    let timeout = Case::of(&outcome, "timeout");
    assert_eq!(timeout.status, "124", "{report}");
    assert!(
        timeout.err_has("timeout after 1 s (vCPU 0 at pc 0x4010"),
        "{report}"
    );
    for (name, boots, action) in [
        ("stop", 1, "stop"),
        ("reset", 3, "reset-vcpu"),
        ("reboot", 2, "reboot"),
    ] {
        let c = Case::of(&outcome, name);
        assert_eq!(c.status, "120", "{name}: {report}");
        let expected: Vec<String> = (0..boots)
            .map(|b| format!("aarch32-escape: boot {b}"))
            .collect();
        assert_eq!(c.out, expected, "{name}: {report}");
        assert!(
            c.err_has("vCPU 0 fault: bad AArch32 mode (KVM invalidated the vCPU)"),
            "{name}: {report}"
        );
        assert!(c.err_has(&format!("action: {action}")), "{name}: {report}");
        if name != "stop" {
            assert!(c.err_has("the restart budget is spent"), "{name}: {report}");
        }
    }
}
