//! `cordon run MODULE.wasm`: WebAssembly modules (written here in the text
//! format) run in the embedded Wasm runtime inside a jailed micro-VM. Each
//! WASI call the runtime supports, and each way a module can fail, with its
//! exit code and stderr line.

mod common;

use std::path::PathBuf;

use common::run;

/// Writes `wat` as a binary module and returns its path.
fn module(name: &str, wat: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-wasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).expect("valid wat")).expect("write module");
    path
}

fn run_module(name: &str, wat: &str, args: &[&str]) -> common::Run {
    let path = module(name, wat);
    let mut all = vec![path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run(&all)
}

/// `(func $print (param ptr len))` writing to stdout, and memory.
const PRELUDE: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func $print (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
"#;

#[test]
fn the_shipped_example_matches_its_source_and_says_hello() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let built = wat::parse_file(root.join("hello.wat")).expect("hello.wat");
    if std::env::var_os("CORDON_UPDATE_EXAMPLES").is_some() {
        std::fs::write(root.join("hello.wasm"), &built).expect("write hello.wasm");
    }
    let shipped = std::fs::read(root.join("hello.wasm")).expect("hello.wasm");
    assert_eq!(
        built, shipped,
        "examples/hello.wasm is stale: CORDON_UPDATE_EXAMPLES=1 cargo test --test wasm"
    );
    let r = run(&[root.join("hello.wasm").to_str().expect("path")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Hello from WebAssembly in a cordon!\n");
}

#[test]
fn proc_exit_sets_the_status_and_args_and_env_arrive() {
    // Prints every argument and environment entry, one per line, then exits
    // with argc * 10 + envc.
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  {PRELUDE}
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func $print_all (param $ptrs i32) (param $count i32) (local $i i32) (local $s i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $s (i32.load (i32.add (local.get $ptrs) (i32.mul (local.get $i) (i32.const 4)))))
      (call $print (i32.const 1) (local.get $s) (call $strlen (local.get $s)))
      (i32.store8 (i32.const 100) (i32.const 10))
      (call $print (i32.const 1) (i32.const 100) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  (func (export "_start") (local $argc i32) (local $envc i32)
    (drop (call $args_sizes (i32.const 16) (i32.const 20)))
    (local.set $argc (i32.load (i32.const 16)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (call $print_all (i32.const 1024) (local.get $argc))
    (drop (call $env_sizes (i32.const 16) (i32.const 20)))
    (local.set $envc (i32.load (i32.const 16)))
    (drop (call $env_get (i32.const 4096) (i32.const 8192)))
    (call $print_all (i32.const 4096) (local.get $envc))
    (call $proc_exit (i32.add (i32.mul (local.get $argc) (i32.const 10)) (local.get $envc)))))"#
    );
    let path = module("args", &wat);
    let r = run(&[
        "--env",
        "GREETING=hi there",
        path.to_str().expect("path"),
        "--",
        "one",
        "two words",
    ]);
    assert_eq!(r.code, 31, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "args.wasm\none\ntwo words\nGREETING=hi there\n");
}

#[test]
fn stdio_fds_answer_and_other_fds_are_bad() {
    // fd_seek on stdout: ESPIPE (70); fd_write on fd 5: EBADF (8);
    // fd_prestat_get on 3: EBADF (no preopens); fd_fdstat_get on 1: a
    // character device (2). Exit status: the four results summed.
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  {PRELUDE}
  (func (export "_start")
    (drop (call $fdstat (i32.const 1) (i32.const 64)))
    (call $proc_exit (i32.add (i32.add
      (call $seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 32))
      (call $fd_write (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 32)))
      (i32.add (call $prestat (i32.const 3) (i32.const 32)) (i32.load8_u (i32.const 64)))))))"#
    );
    let r = run_module("fds", &wat, &[]);
    assert_eq!(r.code, 70 + 8 + 8 + 2, "{}", r.stderr);
}

#[test]
fn unsupported_wasi_calls_return_enosys() {
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  {PRELUDE}
  (func (export "_start")
    (call $proc_exit (i32.add
      (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                  (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))
      (call $accept (i32.const 3) (i32.const 0) (i32.const 0))))))"#
    );
    let r = run_module("enosys", &wat, &[]);
    assert_eq!(r.code, 52 + 52, "{}", r.stderr);
}

#[test]
fn clocks_move_forward_and_realtime_is_now() {
    // Exit 0 if monotonic advances across a loop and realtime is within a
    // minute of the host's clock, passed in argv[1] as seconds.
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  {PRELUDE}
  (func (export "_start") (local $i i32) (local $t0 i64)
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 32)))
    (local.set $t0 (i64.load (i32.const 32)))
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const 100000))))
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 32)))
    (if (i64.le_u (i64.load (i32.const 32)) (local.get $t0)) (then (call $proc_exit (i32.const 1))))
    (drop (call $now (i32.const 0) (i64.const 1) (i32.const 40)))
    ;; seconds since the epoch, printed as 8 little-endian bytes is awkward:
    ;; exit 2 if realtime is before 2026-01-01 or after 2100.
    (if (i64.lt_u (i64.div_u (i64.load (i32.const 40)) (i64.const 1000000000)) (i64.const 1767225600))
      (then (call $proc_exit (i32.const 2))))
    (if (i64.gt_u (i64.div_u (i64.load (i32.const 40)) (i64.const 1000000000)) (i64.const 4102444800))
      (then (call $proc_exit (i32.const 3))))
    (if (i32.ne (call $now (i32.const 9) (i64.const 1) (i32.const 40)) (i32.const 28))
      (then (call $proc_exit (i32.const 4))))))"#
    );
    let r = run_module("clocks", &wat, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn each_failure_has_its_code_and_line() {
    let cases: [(&str, &str, i32, &str); 5] = [
        (
            "trap",
            r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
            113,
            "cordon: wasm: trap: wasm `unreachable` instruction executed",
        ),
        (
            "div0",
            r#"(module (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))"#,
            113,
            "integer divide by zero",
        ),
        (
            "oob",
            r#"(module (memory 1) (func (export "_start") (drop (i32.load (i32.const 70000)))))"#,
            113,
            "out of bounds memory access",
        ),
        (
            "nostart",
            r#"(module (memory (export "memory") 1))"#,
            112,
            "cordon: wasm: the module exports no `_start`",
        ),
        (
            "badimport",
            r#"(module (import "env" "foo" (func)) (func (export "_start")))"#,
            111,
            "cannot find definition for import (env,foo)",
        ),
    ];
    for (name, wat, code, line) in cases {
        run_module(name, wat, &[]).expect(code, line);
    }
    let dir = std::env::temp_dir().join(format!("cordon-wasm-{}", std::process::id()));
    let invalid = dir.join("invalid.wasm");
    std::fs::write(&invalid, b"\0asm\x01\0\0\0\x01").expect("write");
    run(&[invalid.to_str().expect("path")]).expect(110, "cordon: wasm: not a valid module");
}

#[test]
fn stack_overflow_is_a_trap_not_a_crash() {
    let r = run_module(
        "recurse",
        r#"(module (func $f (call $f)) (func (export "_start") (call $f)))"#,
        &[],
    );
    r.expect(113, "cordon: wasm: trap: call stack exhausted");
}

#[test]
fn stdout_and_stderr_are_apart_and_stdin_is_read_to_its_end() {
    // Copies stdin to stdout in chunks of up to 64 bytes until fd_read
    // gives 0, then writes "done" to stderr.
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  {PRELUDE}
  (data (i32.const 200) "done\0a")
  (func (export "_start")
    (block $eof (loop $next
      (i32.store (i32.const 16) (i32.const 1024))
      (i32.store (i32.const 20) (i32.const 64))
      (if (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24))
        (then (call $proc_exit (i32.const 9))))
      (br_if $eof (i32.eqz (i32.load (i32.const 24))))
      (call $print (i32.const 1) (i32.const 1024) (i32.load (i32.const 24)))
      (br $next)))
    (call $print (i32.const 2) (i32.const 200) (i32.const 5))))"#
    );
    let path = module("cat", &wat);
    let mut child = common::cordon()
        .arg("run")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cordon");
    let input: String = (0..200).map(|i| format!("line {i}\n")).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("write stdin");
    drop(stdin);
    let (out, _) = common::wait_limited(child, common::GONE_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), input);
    assert_eq!(stderr, "done\n");
}

#[test]
fn random_get_fills_from_the_rng_device_that_the_import_brings() {
    // Exit 0 if 64 bytes from random_get are not all zero.
    let wat = r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32) (local $or i64)
    (if (call $random (i32.const 64) (i32.const 64)) (then (call $proc_exit (i32.const 2))))
    (loop $next
      (local.set $or (i64.or (local.get $or) (i64.load (i32.add (i32.const 64) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 64))))
    (call $proc_exit (i64.eqz (local.get $or)))))"#;
    let r = run_module("random", wat, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("rng device process started"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("console0"),
        "a console nobody uses: {}",
        r.stderr
    );
}

#[test]
fn poll_oneoff_sleeps_on_a_clock_without_spinning() {
    // Sleeps 150 ms with one relative monotonic clock subscription; exit 0
    // if the monotonic clock moved at least that far and the event is the
    // clock's (userdata 42), else 1.
    let wat = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $t0 i64)
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 0)))
    (local.set $t0 (i64.load (i32.const 0)))
    (i64.store (i32.const 100) (i64.const 42))          ;; userdata
    (i32.store8 (i32.const 108) (i32.const 0))          ;; clock
    (i32.store (i32.const 116) (i32.const 1))           ;; monotonic
    (i64.store (i32.const 124) (i64.const 150000000))   ;; 150 ms, relative
    (if (call $poll (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 300))
      (then (call $proc_exit (i32.const 2))))
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 0)))
    (call $proc_exit (i32.or
      (i32.or (i64.lt_u (i64.sub (i64.load (i32.const 0)) (local.get $t0)) (i64.const 150000000))
              (i32.ne (i32.load (i32.const 300)) (i32.const 1)))
      (i64.ne (i64.load (i32.const 200)) (i64.const 42))))))"#;
    let r = run_module("sleep", wat, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.elapsed.as_millis() >= 150, "{:?}", r.elapsed);
}

#[test]
fn fuel_stops_a_module_at_the_same_point_every_time() {
    // Prints a dot every 1000 iterations, forever.
    let wat = format!(
        r#"(module {PRELUDE}
  (data (i32.const 100) ".")
  (func (export "_start") (local $i i32)
    (loop $next
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 1000)))
        (then (call $print (i32.const 1) (i32.const 100) (i32.const 1))))
      (br $next))))"#
    );
    let path = module("fuel", &wat);
    let path = path.to_str().expect("path");
    let first = run(&["--fuel", "200000", path]);
    first.expect(114, "cordon: wasm: out of fuel");
    let second = run(&["--fuel", "200000", path]);
    assert_eq!(second.code, 114);
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout, "fuel is not deterministic");
    run(&["--fuel", "0", path]).expect(64, "--fuel 0");
    run(&["--timeout", "0.3", path]).expect(124, "timeout after 0.3 s");
}

/// Every WASI function the runtime implements, with its signature.
const ALL_SUPPORTED: &str = r#"
  (import "wasi_snapshot_preview1" "args_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
"#;

#[test]
fn every_supported_function_links_and_strict_mode_refuses_the_rest() {
    let all = format!(
        r#"(module {ALL_SUPPORTED} (memory (export "memory") 1) (func (export "_start")))"#
    );
    let path = module("all-supported", &all);
    let path = path.to_str().expect("path");
    assert_eq!(run(&[path]).code, 0);
    assert_eq!(run(&["--strict-wasi", path]).code, 0);
    let more = format!(
        r#"(module {ALL_SUPPORTED}
  (import "wasi_snapshot_preview1" "path_open"
    (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1) (func (export "_start")))"#
    );
    let path = module("unsupported", &more);
    let path = path.to_str().expect("path");
    assert_eq!(run(&[path]).code, 0);
    run(&["--strict-wasi", path]).expect(
        111,
        "--strict-wasi: the module imports WASI functions the runtime does not implement: path_open, sock_send",
    );
}

#[test]
fn a_module_that_tries_every_escape_ends_cleanly() {
    // Calls unsupported WASI functions (each must say ENOSYS), grows its
    // memory until memory.grow says -1, then writes 100 MiB to stdout in
    // 64 KiB writes, then exits 7.
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $raise (param i32) (result i32)))
  {PRELUDE}
  (func (export "_start") (local $i i32)
    (if (i32.ne (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 0)) (i32.const 52))
      (then (call $proc_exit (i32.const 1))))
    (if (i32.ne (call $accept (i32.const 3) (i32.const 0) (i32.const 0)) (i32.const 52))
      (then (call $proc_exit (i32.const 2))))
    (if (i32.ne (call $raise (i32.const 9)) (i32.const 52))
      (then (call $proc_exit (i32.const 3))))
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 64)) (i32.const -1))))
    (loop $write
      (call $print (i32.const 1) (i32.const 65536) (i32.const 65536))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $i) (i32.const 1600))))
    (call $proc_exit (i32.const 7))))"#
    );
    let path = module("escape", &wat);
    // To a file: 100 MiB would fill a pipe nobody reads until the end.
    let out_path = path.with_extension("out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let child = common::cordon()
        .arg("run")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cordon");
    let (done, _) = common::wait_limited(child, std::time::Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(7), "{stderr}");
    let written = std::fs::metadata(&out_path).expect("output").len();
    assert_eq!(written, 100 << 20);
    std::fs::remove_file(out_path).ok();
}

#[test]
fn hostile_pointers_get_efault_not_a_crash() {
    // Every pointer argument out of the module's one page: each call must
    // return EFAULT (21); the exit status sums the results / 21 (expect 7).
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  {PRELUDE}
  (func (export "_start") (local $sum i32)
    ;; an iovec that points past the end, and a count that runs past it
    (i32.store (i32.const 0) (i32.const 65530))
    (i32.store (i32.const 4) (i32.const 100))
    (local.set $sum (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $sum (i32.add (local.get $sum)
      (call $fd_write (i32.const 1) (i32.const 65528) (i32.const 1000000) (i32.const 8))))
    (local.set $sum (i32.add (local.get $sum) (call $args_get (i32.const -4) (i32.const 0))))
    (local.set $sum (i32.add (local.get $sum) (call $env_sizes (i32.const 65534) (i32.const 0))))
    (local.set $sum (i32.add (local.get $sum) (call $now (i32.const 1) (i64.const 0) (i32.const 65532))))
    (local.set $sum (i32.add (local.get $sum) (call $fdstat (i32.const 1) (i32.const 65520))))
    (local.set $sum (i32.add (local.get $sum) (call $random (i32.const 65000) (i32.const 1000))))
    (call $proc_exit (i32.div_u (local.get $sum) (i32.const 21)))))"#
    );
    let r = run_module("efault", &wat, &[]);
    assert_eq!(r.code, 7, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn no_jail_runs_modules_too() {
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello.wasm");
    let r = run(&["--no-jail", hello]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Hello from WebAssembly in a cordon!\n");
    assert!(r.stderr.contains("WARNING: --no-jail"), "{}", r.stderr);
}
