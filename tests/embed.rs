//! The embedding API, as a program uses it: `examples/embed.rs` (built by
//! `cargo test` with the other examples) runs a WebAssembly module through
//! `cordon::Sandbox` and reports how it ended.

use std::path::PathBuf;
use std::process::Command;

/// target/<triple>/<profile>/examples/embed, next to this test's deps/.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = profile_dir.join("examples/embed");
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn a_program_runs_a_module_through_the_api() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(example())
        .arg(format!("{root}/examples/hello.wasm"))
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello from WebAssembly in a cordon!\n"
    );
    assert!(stderr.contains("exited with 0"), "{stderr}");
    // The lifecycle events come back with the outcome.
    assert!(
        stderr.contains("embed: events: Started, GuestExit"),
        "{stderr}"
    );
}

#[test]
fn the_api_reports_cordons_causes() {
    let dir = std::env::temp_dir().join(format!("cordon-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trap = dir.join("trap.wasm");
    let wasm = wat::parse_str(r#"(module (func (export "_start") unreachable))"#).expect("wat");
    std::fs::write(&trap, wasm).expect("write");
    let out = Command::new(example()).arg(&trap).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(113), "{stderr}");
    assert!(stderr.contains("wasm: trap"), "{stderr}");
    let missing = Command::new(example())
        .arg(dir.join("missing.wasm"))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(66));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_module_given_as_bytes_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(example())
        .args(["--bytes", &format!("{root}/examples/hello.wasm")])
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello from WebAssembly in a cordon!\n"
    );
}

#[test]
fn the_sandbox_writes_to_the_handles_it_is_given() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::temp_dir().join(format!("cordon-embed-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("out.txt");
    let out = Command::new(example())
        .args(["--out", file.to_str().expect("path")])
        .arg(format!("{root}/examples/hello.wasm"))
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("output file"),
        "Hello from WebAssembly in a cordon!\n"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_api_applies_the_fault_policy() {
    let guest = std::path::PathBuf::from(env!("CORDON_GUEST_DIR")).join("triple-fault");
    let out = Command::new(example())
        .args(["--on-vcpu-fault", "reset-vcpu"])
        .arg(&guest)
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(120), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for boot in 0..3 {
        assert!(
            stdout.contains(&format!("triple-fault: boot {boot}\n")),
            "{stdout}"
        );
    }
    assert!(
        stderr.contains(
            "embed: events: Started, VcpuFault, fault (reset-vcpu), Started, VcpuFault, fault (reset-vcpu), Started, VcpuFault, fault (stop)"
        ),
        "{stderr}"
    );
}
