//! Builds the guest images in `guest-images/` (a separate Cargo workspace
//! for the guest, see its Cargo.toml) with a nested cargo, and copies each
//! one to `<target>/guests/<name>`, the path the README and the tests use.
//! `CORDON_GUEST_DIR` tells the binary and its tests where that is.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// The guests' target: freestanding code built for the Linux target, with
/// the flags and linker script in `guest-images/.cargo/config.toml`.
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Every binary of the guest workspace, by the name it gets in `guests/`.
const GUESTS: &[&str] = &[
    "hello",
    "triple-fault",
    "emulation-failure",
    "mmio-storm",
    "console-flood",
    "spin",
    "bad-exit",
    "stack-overflow",
    "write-code",
    "bad-console-write",
    "port-writes",
    "exit-now",
    "blkbench",
    "rng-read",
    "blkcheck",
    "console-echo",
    "virtq-desc-loop",
    "virtq-oob-addr",
    "virtq-long-chain",
    "virtq-bad-size",
    "virtq-notify-early",
    "virtq-config-oob",
    "virtq-bad-features",
    "blk-write-ro",
    "wasm",
];

/// Sources of the guests, relative to the workspace root.
const GUEST_SOURCES: &[&str] = &[
    "guest-images/Cargo.toml",
    "guest-images/Cargo.lock",
    "guest-images/.cargo/config.toml",
    "guest-images/link.ld",
    "guest-images/rt",
    "guest-images/hello",
    "guest-images/hostile",
    "guest-images/bench",
    "guest-images/virtio",
    "guest-images/blkcheck",
    "guest-images/console-echo",
    "guest-images/rng-read",
    "guest-images/wasm",
    "guest-abi/Cargo.toml",
    "guest-abi/src",
];

/// Variables the outer cargo sets for this script (or the user set for the
/// outer build) that would change how the nested cargo builds the guests.
const CLEARED_VARS: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_LINKER",
];
const CLEARED_PREFIXES: &[&str] = &[
    "CARGO_PROFILE_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_TARGET_",
    "CARGO_BUILD_",
];

fn main() {
    let (root, target_dir) = match dirs() {
        Ok(dirs) => dirs,
        Err(message) => {
            eprintln!("error: building the guest images: {message}");
            exit(1);
        }
    };
    // Set on every target, so code that names the guests compiles anywhere;
    // the guests themselves are x86_64 images, built only for x86_64 hosts.
    let guest_dir = target_dir.join("guests");
    println!("cargo:rustc-env=CORDON_GUEST_DIR={}", guest_dir.display());
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        return;
    }
    // A deleted guest directory is rebuilt.
    println!("cargo:rerun-if-changed={}", guest_dir.display());
    for path in GUEST_SOURCES {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    if let Err(message) = run(&root, &target_dir, &guest_dir) {
        eprintln!("error: building the guest images: {message}");
        exit(1);
    }
}

/// The workspace root and the target directory.
fn dirs() -> Result<(PathBuf, PathBuf), String> {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    Ok((root, target_dir))
}

fn run(root: &Path, target_dir: &Path, guest_dir: &Path) -> Result<(), String> {
    let build_dir = target_dir.join("guest-build");
    build_guests(&root.join("guest-images"), &build_dir)?;

    let built = build_dir.join(GUEST_TARGET).join("release");
    fs::create_dir_all(guest_dir).map_err(|e| format!("creating {}: {e}", guest_dir.display()))?;
    for name in GUESTS {
        install(&built.join(name), &guest_dir.join(name))?;
    }
    Ok(())
}

/// Runs `cargo build --release` on the guest workspace in `workspace`, with
/// its own target directory and a cleaned environment. The working
/// directory is the guest workspace so its `.cargo/config.toml` applies.
fn build_guests(workspace: &Path, build_dir: &Path) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--locked", "--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(build_dir);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let cleared = CLEARED_VARS.contains(&key.as_ref())
            || CLEARED_PREFIXES
                .iter()
                .any(|prefix| key.starts_with(prefix));
        if cleared {
            command.env_remove(key.as_ref());
        }
    }
    let output = command
        .output()
        .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(format!("nested cargo build failed ({})", output.status));
    }
    Ok(())
}

/// Copies a built guest to its stable path, replacing the old copy in one
/// rename so nothing ever sees a half-written image.
/// An unchanged image is left alone, so its directory's mtime (which this
/// script watches, to rebuild deleted guests) only moves when a guest did.
fn install(from: &Path, to: &Path) -> Result<(), String> {
    check_exec(from)?;
    if fs::read(from).ok() == fs::read(to).ok() {
        return Ok(());
    }
    let partial = to.with_extension("partial");
    fs::copy(from, &partial).map_err(|e| format!("copying {}: {e}", from.display()))?;
    fs::rename(&partial, to).map_err(|e| format!("installing {}: {e}", to.display()))
}

/// Fails unless `path` is an ELF64 x86_64 ET_EXEC, which is all the loader
/// takes. rustflags from a `.cargo/config.toml` above the guest workspace
/// are merged into the guests' own, so a flag meant for the host (say,
/// static-pie) could otherwise turn the guests into ET_DYN unnoticed.
fn check_exec(path: &Path) -> Result<(), String> {
    let image = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let field = |at: usize| {
        image
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let elf64 = image.starts_with(b"\x7fELF\x02\x01");
    const ET_EXEC: u16 = 2;
    const EM_X86_64: u16 = 62;
    if elf64 && field(16) == Some(ET_EXEC) && field(18) == Some(EM_X86_64) {
        return Ok(());
    }
    Err(format!(
        "{} is not an x86_64 ELF64 ET_EXEC (check the rustflags that reach the guest build)",
        path.display()
    ))
}
