#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian packages), then runs fmt, clippy, the aarch64 check and every test,
# printing how long each stage took. Run as root (the tests use /dev/kvm).
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=0
suite_start=$(date +%s)
stage() {
    stage_end
    stage_name="$1"
    stage_start=$(date +%s.%N)
    echo "=== stage: $stage_name"
}
stage_end() {
    if [ "$stage_start" != 0 ]; then
        printf '=== stage %s took %.1f s\n' "$stage_name" "$(echo "$(date +%s.%N) - $stage_start" | bc)"
    fi
}

need_pkgs=()
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
# qemu-system-x86 (with qemu-storage-daemon), busybox-static, xz-utils and
# binutils: the emulated-machine tests (tests/emulated/, scripts/fetch-linux.sh).
# clang, lld, wasi-libc and libclang-rt-14-dev-wasm32: the C programs built
# for WASI in tests/wasi_c.rs. gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
# and qemu-user: the arm64 unit tests, cross-linked and run under
# qemu-aarch64. qemu-system-arm: the emulated arm64 machine with KVM
# (tests/l1_arm64.rs).
for pkg in rustc-web libstd-rust-web-dev:arm64 bc strace \
    qemu-system-x86 busybox-static xz-utils binutils \
    clang lld wasi-libc libclang-rt-14-dev-wasm32 \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-system-arm; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "=== installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

stage "fmt"
cargo fmt --all --check
cargo fmt --manifest-path guest-images/Cargo.toml --all --check

stage "build"
cargo build --workspace --all-targets

stage "clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path guest-images/Cargo.toml --target x86_64-unknown-linux-gnu \
    --target-dir target/guest-clippy -- -D warnings

stage "aarch64 check"
# Debian's rustc-web carries the arm64 standard library; rustup cannot.
# bench/ is excluded: the floor is an x86_64 program by definition.
RUSTC=/usr/bin/rustc cargo check --workspace --exclude bench --all-targets \
    --target aarch64-unknown-linux-gnu --target-dir target/aarch64-check

stage "aarch64 unit tests"
# vmm's unit tests (the arm64 vCPU recovery and fault decoding among them)
# built for arm64 and run under qemu-aarch64 (see .cargo/config.toml).
RUSTC=/usr/bin/rustc cargo test -p vmm --lib --target aarch64-unknown-linux-gnu \
    --target-dir target/aarch64-check
# What tests/l1_arm64.rs runs on arm64 KVM in the emulated machine: the
# probe and a static arm64 cordon.
RUSTC=/usr/bin/rustc cargo build -p vmm --example aarch32_probe \
    --target aarch64-unknown-linux-gnu --target-dir target/aarch64-check
RUSTC=/usr/bin/rustc cargo build -p cordon --bin cordon \
    --target aarch64-unknown-linux-gnu --target-dir target/aarch64-check

stage "fetch linux"
# Debian's kernel, modules and busybox for the emulated machines, pinned.
bash scripts/fetch-linux.sh
bash scripts/fetch-linux-arm64.sh

stage "wasmi CLI"
# The reference the Wasm tests compare cordon with (tests/wasi_c.rs): the
# CLI of the wasmi version the runtime embeds, pinned.
cargo install -q wasmi_cli --version =2.0.0 --locked --root target/tools/wasmi

stage "tests"
cargo test --workspace

stage "seccomp measurement"
# Normal runs under strace: every call each role makes is in its policy.
sh scripts/measure-seccomp.sh

stage "wall tests as an unprivileged user"
bash scripts/unprivileged-walls.sh

stage_end
echo "=== all stages passed in $(( $(date +%s) - suite_start )) s"
