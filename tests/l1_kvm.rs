//! Real KVM one level down: Debian's kernel as an emulated L1 machine
//! (`qemu-system-x86_64 -accel tcg -M q35 -cpu max`, so the virtual CPU has
//! SVM) loads kvm and kvm-amd and runs cordon's tools there.
//!
//! `vcpu_faults_under_each_policy_on_kvm_amd` runs cordon (jailed, as on
//! any host) on kvm-amd: a failed entry (which kvm_pvm cannot produce),
//! a triple fault and an emulation failure, under each restart policy.
//! One L1 boot, about 6 s.
//!
//! `fail_entry_recipes_on_kvm_amd` reports which inconsistent entry states
//! kvm-amd turns into KVM_EXIT_FAIL_ENTRY (the same recipes as on this
//! host, `target/release/fail_entry`). It is a measurement, not a check,
//! so it is ignored by default:
//!
//!   cargo build --release -p bench
//!   cargo test --test l1_kvm -- --ignored --nocapture

mod emulated;

use emulated::cases::{self, Case};
use emulated::{Initramfs, Kernel, Machine, Scratch};
use std::path::PathBuf;
use std::time::Duration;

/// Load order of KVM on an AMD (or emulated SVM) machine.
const KVM_AMD: &[&str] = &["irqbypass", "kvm", "ccp", "kvm-amd"];

/// The L1 machine: q35, every CPU feature TCG emulates (SVM among them),
/// 4 GiB.
fn l1(kernel: &Kernel, initrd: &std::path::Path) -> Machine {
    let args = ["-accel", "tcg", "-M", "q35", "-cpu", "max", "-m", "4G"];
    Machine::new("qemu-system-x86_64", &args, &kernel.vmlinux(), initrd)
        .cmdline(&emulated::tsc::cmdline())
        .timeout(Duration::from_secs(240))
}

/// A binary of the bench crate's release build (static, like cordon).
fn bench_binary(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_cordon"));
    let target = dir.parent().and_then(|p| p.parent()).expect("target dir");
    let path = target.join("release").join(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build --release -p bench",
        path.display()
    );
    path
}

#[test]
#[ignore = "a measurement, not a check; see the file's header"]
fn fail_entry_recipes_on_kvm_amd() {
    let kernel = Kernel::debian_amd64();
    let scratch = Scratch::new("l1-fail-entry");
    let mut initramfs = Initramfs::new(&kernel, &scratch.path("initrd")).expect("initramfs");
    initramfs.modules(KVM_AMD).expect("kvm modules");
    initramfs
        .host_file("/bin/fail_entry", &bench_binary("fail_entry"), 0o755)
        .expect("fail_entry");
    let initrd = initramfs
        .finish(
            r#"
[ -e /dev/kvm ] || { mark no-kvm; exit 1; }
/bin/fail_entry > /tmp/table
while read -r line; do mark row "$line"; done < /tmp/table
"#,
        )
        .expect("finish initramfs");
    let outcome = l1(&kernel, &initrd).run();
    println!("{}", outcome.report());
    outcome.expect_clean_exit();
}

/// Runs cordon in L1 once per case; each case marks its exit status
/// (`NAME-status`) and every line it printed (`NAME-out`, `NAME-err`).
const CASES: &[(&str, &str)] = &[
    ("hello", "/hello"),
    ("fail-stop", "--test-bad-entry-state /hello"),
    (
        "fail-reset",
        "--test-bad-entry-state --on-vcpu-fault reset-vcpu /hello",
    ),
    (
        "fail-reboot",
        "--test-bad-entry-state --on-vcpu-fault reboot /hello",
    ),
    (
        "triple-reset",
        "--on-vcpu-fault reset-vcpu --max-restarts 1 /triple-fault",
    ),
    (
        "triple-reboot",
        "--on-vcpu-fault reboot --max-restarts 1 /triple-fault",
    ),
    (
        "emulation-reset",
        "--on-vcpu-fault reset-vcpu --max-restarts 1 /emulation-failure",
    ),
];

#[test]
fn vcpu_faults_under_each_policy_on_kvm_amd() {
    let kernel = Kernel::debian_amd64();
    let scratch = Scratch::new("l1-faults");
    let mut initramfs = Initramfs::new(&kernel, &scratch.path("initrd")).expect("initramfs");
    initramfs.modules(KVM_AMD).expect("kvm modules");
    let cordon = std::path::Path::new(env!("CARGO_BIN_EXE_cordon"));
    initramfs
        .host_file("/bin/cordon", cordon, 0o755)
        .expect("cordon");
    let guests = PathBuf::from(env!("CORDON_GUEST_DIR"));
    for g in ["hello", "triple-fault", "emulation-failure"] {
        initramfs
            .host_file(&format!("/{g}"), &guests.join(g), 0o755)
            .expect("guest");
    }
    let script = cases::script(CASES);
    let initrd = initramfs.finish(&script).expect("finish initramfs");
    let outcome = l1(&kernel, &initrd).run();
    let report = outcome.report();
    // Shown with --nocapture: what each case printed.
    println!("{report}");
    outcome.expect_clean_exit();

    let hello = Case::of(&outcome, "hello");
    assert_eq!(hello.status, "0", "{report}");

    // A failed entry, which only hardware KVM gives.
    let stop = Case::of(&outcome, "fail-stop");
    assert_eq!(stop.status, "120", "{report}");
    assert!(
        stop.err_has("fault: failed entry (hardware reason 0x"),
        "{report}"
    );
    assert!(stop.err_has("; action: stop"), "{report}");
    for (name, action) in [("fail-reset", "reset-vcpu"), ("fail-reboot", "reboot")] {
        let c = Case::of(&outcome, name);
        assert_eq!(c.status, "0", "{name}: {report}");
        assert!(
            c.err_has(&format!("action: {action} (restart 1;")),
            "{name}: {report}"
        );
        assert!(
            c.out.contains(&"vcpu = 0 of 1, boot counter = 1"),
            "{name}: {report}"
        );
    }

    // Triple fault and emulation failure recover on SVM too.
    for (name, guest) in [
        ("triple-reset", "triple-fault"),
        ("triple-reboot", "triple-fault"),
        ("emulation-reset", "emulation-failure"),
    ] {
        let c = Case::of(&outcome, name);
        assert_eq!(c.status, "120", "{name}: {report}");
        assert!(c.err_has("the restart budget is spent"), "{name}: {report}");
        if guest == "triple-fault" {
            // SVM's KVM resets a vCPU that shut down before reporting it.
            assert!(
                c.err_has("at pc unknown; KVM reset the vCPU"),
                "{name}: {report}"
            );
        }
        for boot in 0..2 {
            let line = format!("{guest}: boot {boot}");
            assert!(
                c.out.contains(&line.as_str()),
                "{name} lacks {line:?}: {report}"
            );
        }
    }
}
