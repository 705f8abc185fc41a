//! Compiles `seccomp-policies/<target arch>/<role>.json` into BPF with
//! seccompiler and writes `<role>.bpf` to OUT_DIR, where `jail::seccomp`
//! embeds them. Each instruction is 8 bytes, little-endian: code u16, jt u8,
//! jf u8, k u32 (struct sock_filter).

use std::path::PathBuf;

/// Every policy file, one per role; jail::seccomp::Role names the same.
const ROLES: [&str; 6] = [
    "supervisor",
    "vm-unikernel",
    "vcpu-unikernel",
    "device-console",
    "device-block",
    "device-rng",
];

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let policies = manifest.join("..").join("seccomp-policies");
    println!("cargo:rerun-if-changed={}", policies.display());
    let target = seccompiler::TargetArch::try_from(arch.as_str())
        .unwrap_or_else(|e| panic!("no seccomp policies for {arch}: {e}"));
    for role in ROLES {
        let path = policies.join(&arch).join(format!("{role}.json"));
        println!("cargo:rerun-if-changed={}", path.display());
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let mut map = seccompiler::compile_from_json(file, target)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let program = map
            .remove(role)
            .unwrap_or_else(|| panic!("{} has no filter named {role}", path.display()));
        let mut bytes = Vec::with_capacity(program.len() * 8);
        for insn in &program {
            bytes.extend_from_slice(&insn.code.to_le_bytes());
            bytes.push(insn.jt);
            bytes.push(insn.jf);
            bytes.extend_from_slice(&insn.k.to_le_bytes());
        }
        std::fs::write(out.join(format!("{role}.bpf")), bytes).expect("write the BPF program");
    }
}
