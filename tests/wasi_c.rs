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

/// The wasmi CLI at the runtime's wasmi version, which the test command
/// installs (`cargo install wasmi_cli --version =2.0.0 --locked --root
/// target/tools/wasmi`).
fn wasmi_cli() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/wasmi/bin/wasmi");
    assert!(
        path.exists(),
        "{} is missing: cargo install wasmi_cli --version =2.0.0 --locked --root target/tools/wasmi",
        path.display()
    );
    path
}

/// stdout, stderr and the exit status of one run.
type Ran = (String, String, Option<i32>);

fn ran(out: std::process::Output) -> Ran {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// Runs `module` with `args`, `env` and `input` under cordon and under the
/// wasmi CLI, from the module's directory (the wasmi CLI passes the path it
/// is given as argv[0], cordon the file name).
fn both(module: &Path, args: &[&str], env: &[&str], input: &str) -> (Ran, Ran) {
    let dir = module.parent().expect("module dir");
    let module = Path::new(module.file_name().expect("module name"));
    let mut c = cordon();
    c.arg("run");
    for e in env {
        c.args(["--env", e]);
    }
    c.arg(module).arg("--").args(args);
    let mut w = Command::new(wasmi_cli());
    for e in env {
        w.args(["--env", e]);
    }
    w.arg(module).args(args);
    let mut results = Vec::new();
    for mut cmd in [c, w] {
        let mut child = cmd
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("stdin");
        drop(stdin);
        results.push(ran(wait_limited(child, GONE_WITHIN).0));
    }
    let wasmi = results.pop().expect("wasmi");
    (results.pop().expect("cordon"), wasmi)
}

#[test]
fn every_program_behaves_as_under_the_wasmi_cli() {
    let lines: String = (0..50).map(|i| format!("input line {i}\n")).collect();
    let cases: [(&str, &[&str], &[&str], &str); 8] = [
        ("printf", &[], &[], ""),
        ("args", &["one", "two three"], &["K=V", "B=2"], ""),
        ("exit", &["0"], &[], ""),
        ("exit", &["77"], &[], ""),
        ("clocks", &[], &[], ""),
        ("random", &[], &[], ""),
        ("echo", &[], &[], &lines),
        ("compute", &["50000"], &[], ""),
    ];
    for (name, args, env, input) in cases {
        let module = build(name);
        let (cordon, wasmi) = both(&module, args, env, input);
        assert_eq!(cordon, wasmi, "{name} {args:?}: cordon vs the wasmi CLI");
    }
}
