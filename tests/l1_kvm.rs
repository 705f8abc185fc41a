//! Real KVM one level down: Debian's kernel as an emulated L1 machine
//! (`qemu-system-x86_64 -accel tcg -M q35 -cpu max`, so the virtual CPU has
//! SVM) loads kvm and kvm-amd and runs cordon's tools there.
//!
//! `fail_entry_recipes_on_kvm_amd` reports which inconsistent entry states
//! kvm-amd turns into KVM_EXIT_FAIL_ENTRY (the same recipes as on this
//! host, `target/release/fail_entry`). It is a measurement, not a check,
//! and takes about a minute of emulation, so it is ignored by default:
//!
//!   cargo build --release -p bench
//!   cargo test --test l1_kvm -- --ignored --nocapture

mod emulated;

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
#[ignore = "a measurement under emulation (about a minute); see the file's header"]
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
