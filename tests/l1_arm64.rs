//! The seed's failure on real arm64 KVM, one level down: Debian's arm64
//! kernel as an emulated L1 machine (`qemu-system-aarch64 -accel tcg -M
//! virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on`, so KVM
//! has EL2) booted with `allow_mismatched_32bit_el0`, runs
//! vmm/examples/aarch32_probe.rs (static, built for arm64 by
//! scripts/test.sh's "aarch64 unit tests" stage): a guest at EL1 ERETs to
//! AArch32 User mode, KVM invalidates the vCPU, and `vmm::arch::aarch64`
//! recovers it with KVM_ARM_VCPU_INIT, three times; then a vCPU run before
//! its init.

mod emulated;

use emulated::{Initramfs, Kernel, Machine, Scratch};
use std::path::PathBuf;
use std::time::Duration;

fn probe_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/aarch64-check/aarch64-unknown-linux-gnu/debug/examples/aarch32_probe");
    assert!(
        path.exists(),
        "{} is missing: RUSTC=/usr/bin/rustc cargo build --example aarch32_probe -p vmm \\
         --target aarch64-unknown-linux-gnu --target-dir target/aarch64-check",
        path.display()
    );
    path
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
    let outcome = Machine::new("qemu-system-aarch64", &args, &kernel.image(), &initrd)
        .cmdline("console=ttyAMA0 allow_mismatched_32bit_el0")
        .timeout(Duration::from_secs(180))
        .run();
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
