//! Bad input gets one line naming the problem and a documented exit code,
//! with no panic and no child left behind.

mod common;

use std::path::{Path, PathBuf};

use common::{guest, run};

fn hello_bytes() -> Vec<u8> {
    std::fs::read(guest("hello")).expect("read hello")
}

/// Writes `bytes` to a fresh file under the test's temp dir.
fn image(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write image");
    path
}

fn run_image(path: &Path) -> common::Run {
    run(&[path.to_str().expect("utf-8")])
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Offset of the first PT_LOAD program header.
fn first_load(b: &[u8]) -> usize {
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let size = u16_at(b, 54);
    (0..u16_at(b, 56))
        .map(|i| phoff + i * size)
        .find(|&at| b[at..at + 4] == 1u32.to_le_bytes())
        .expect("a PT_LOAD")
}

fn patched(name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = hello_bytes();
    patch(&mut bytes);
    image(name, &bytes)
}

#[test]
fn missing_image() {
    run(&["/nonexistent/image"]).expect(66, "cannot open image /nonexistent/image");
}

#[test]
fn directory_image() {
    run(&["/"]).expect(66, "is a directory");
}

#[test]
fn not_an_elf() {
    run_image(&image("text", b"just some text")).expect(65, "neither an ELF executable nor");
    run_image(&image("empty", b"")).expect(65, "empty");
    run_image(&image("not-wasm", b"\0asn\x01\0\0\0")).expect(65, "WebAssembly");
}

#[test]
fn position_independent_elf() {
    let path = patched("dyn", |b| b[16..18].copy_from_slice(&3u16.to_le_bytes()));
    run_image(&path).expect(65, "ET_DYN");
}

#[test]
fn elf_for_another_machine() {
    let path = patched("arm", |b| b[18..20].copy_from_slice(&183u16.to_le_bytes()));
    run_image(&path).expect(65, "ELF machine 183");
}

#[test]
fn segment_outside_ram() {
    let path = patched("far", |b| {
        let ph = first_load(b);
        for field in [16, 24] {
            b[ph + field..ph + field + 8].copy_from_slice(&0x7000_0000u64.to_le_bytes());
        }
    });
    run_image(&path).expect(65, "is outside guest RAM");
}

#[test]
fn overlapping_segments() {
    let path = patched("overlap", |b| {
        let first = first_load(b);
        let second = first + u16_at(b, 54);
        let addr = b[first + 16..first + 24].to_vec();
        b[second + 16..second + 24].copy_from_slice(&addr);
        b[second + 24..second + 32].copy_from_slice(&addr);
    });
    run_image(&path).expect(65, "overlaps segment");
}

#[test]
fn truncated_image() {
    let bytes = hello_bytes();
    run_image(&image("truncated", &bytes[..bytes.len() / 2])).expect(65, "truncated");
}

#[test]
fn entry_outside_segments() {
    let path = patched("entry", |b| {
        b[24..32].copy_from_slice(&0x10u64.to_le_bytes())
    });
    run_image(&path).expect(65, "entry point 0x10 is outside");
}

#[test]
fn memory_out_of_range() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    run(&["--mem", "0", hello]).expect(64, "--mem 0 MiB is outside");
    run(&["--mem", "100000000", hello]).expect(64, "--mem 100000000 MiB is outside");
}

#[test]
fn cpus_out_of_range() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    run(&["--cpus", "0", hello]).expect(64, "--cpus 0 is outside");
    run(&["--cpus", "100000", hello]).expect(64, "--cpus 100000 is outside");
}

#[test]
fn arguments_larger_than_boot_info() {
    let hello = guest("hello");
    let big = "x".repeat(70_000);
    run(&[hello.to_str().unwrap(), "--", &big]).expect(64, "bytes of boot info");
}

#[test]
fn malformed_flags() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    run(&["--env", "NOEQUALS", hello]).expect(64, "is not KEY=VALUE");
    run(&["--timeout", "-1", hello]).expect(64, "--timeout -1");
    let out = common::cordon()
        .args(["run", "--mem", "lots", hello])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
