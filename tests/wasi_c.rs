//! C programs built with Debian's WASI toolchain (`clang --target=wasm32-wasi
//! --sysroot=/usr`, from the packages clang, lld, wasi-libc and
//! libclang-rt-14-dev-wasm32, which the test command installs) run under
//! `cordon run` as a WASI host should run them: stdio, argv and the
//! environment, exit codes, clocks, random bytes, stdin to its end, a
//! compute kernel.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{cordon, run, wait_limited, GONE_WITHIN};

/// Builds `tests/wasi-c/NAME.c` into a module; panics with the compiler's
/// message if it cannot.
fn build(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/wasi-c")
        .join(format!("{name}.c"));
    let dir = std::env::temp_dir().join(format!("cordon-wasi-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join(format!("{name}.wasm"));
    let status = Command::new("clang")
        .args(["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("clang (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)");
    assert!(status.success(), "clang failed on {}", src.display());
    out
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn printf_reaches_stdout_and_stderr_apart() {
    let m = build("printf");
    let r = run(&[path(&m)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "hello from C, 2 + 3 = 5\npi is about 3.14159\n");
    assert!(r.stderr.contains("this goes to stderr\n"), "{}", r.stderr);
}

#[test]
fn argv_and_environment_and_the_exit_status() {
    let m = build("args");
    let r = run(&["--env", "A=1", "--env", "B=two", path(&m), "--", "x", "y z"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "argv[0] = args.wasm\nargv[1] = x\nargv[2] = y z\nenv A=1\nenv B=two\n"
    );
    let m = build("exit");
    for code in ["0", "1", "42", "255"] {
        assert_eq!(run(&[path(&m), "--", code]).code.to_string(), code);
    }
}

#[test]
fn clocks_sleep_and_random() {
    let r = run(&[path(&build("clocks"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "slept at least 50 ms: yes\nwall clock after 2026: yes\n"
    );
    let r = run(&[path(&build("random"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "random bytes: yes\n");
}

#[test]
fn stdin_is_echoed_to_its_end() {
    let m = build("echo");
    let mut child = cordon()
        .arg("run")
        .arg(&m)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cordon");
    let input: String = (0..1000).map(|i| format!("line number {i}\n")).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("stdin");
    drop(stdin);
    let (out, _) = wait_limited(child, GONE_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), input);
    assert_eq!(stderr, "1000 lines\n");
}

#[test]
fn a_compute_kernel_gets_the_right_answer() {
    let r = run(&[path(&build("compute")), "--", "100000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "primes below 100000: 9592\nmatrix checksum: 89456640.0\n"
    );
}
