//! Landlock walls, each in a forked child with no other jail layer. The
//! tests run as root (CAP_DAC_OVERRIDE, no seccomp, the host's root), so
//! every EACCES/EPERM below is Landlock's; each case first shows the same
//! operation succeeding before `restrict`.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::ExitCode;

use common::{expect_errno, Child};
use jail::landlock::{restrict, Access, Enforced, LandlockError};

/// The scratch directory of this test run; `main` removes it at the end
/// (a restricted child cannot).
fn scratch(case: &str) -> PathBuf {
    // SAFETY: getppid has no preconditions; the parent is the test's main.
    let main_pid = unsafe { libc::getppid() };
    std::env::temp_dir()
        .join(format!("jail-landlock-{main_pid}"))
        .join(case)
}

fn setup(case: &str) -> Result<PathBuf, String> {
    let dir = scratch(case);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in ["allowed", "other"] {
        std::fs::write(dir.join(name), name).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(dir)
}

fn read(path: &PathBuf) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn open_write(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().write(true).open(path)
}

fn restrict_to(paths: &[(PathBuf, Access)]) -> Result<Enforced, String> {
    let enforced = restrict(paths).map_err(|e| e.to_string())?;
    if !enforced.tcp_denied || !enforced.scoped {
        return Err(format!("kernel ABI {} lacks TCP or scoping", enforced.abi));
    }
    Ok(enforced)
}

/// Reads the rest of an fd opened before `restrict` and checks its content.
fn expect_reads(before: &mut File, expected: &str) -> Result<(), String> {
    let mut content = String::new();
    before
        .read_to_string(&mut content)
        .map_err(|e| format!("read fd opened before: {e}"))?;
    if content != expected {
        return Err(format!("fd opened before reads {content:?}"));
    }
    Ok(())
}

fn kill_parent() -> std::io::Result<()> {
    // SAFETY: signal 0 only checks permission; the parent is the test main.
    if unsafe { libc::kill(libc::getppid(), 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Only the read-only file is reachable: another file EACCES, writing the
/// allowed file EACCES, creating a file EACCES; an fd opened before still
/// reads; TCP connect and bind EACCES; signalling a process outside the
/// domain EPERM; connecting to an abstract unix socket from outside EPERM.
fn read_only_file_is_all_there_is(_: &Child) -> Result<(), String> {
    let dir = setup("read_only_file")?;
    let (allowed, other) = (dir.join("allowed"), dir.join("other"));
    let mut before = File::open(&other).map_err(|e| e.to_string())?;
    let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = tcp.local_addr().map_err(|e| e.to_string())?;
    let name = format!("jail-landlock-{}", std::process::id());
    let abstract_addr = SocketAddr::from_abstract_name(&name).map_err(|e| e.to_string())?;
    let _unix = UnixListener::bind_addr(&abstract_addr).map_err(|e| e.to_string())?;

    // Controls: each operation works before the restriction.
    read(&other).map_err(|e| format!("control read: {e}"))?;
    drop(open_write(&allowed).map_err(|e| format!("control write: {e}"))?);
    drop(TcpStream::connect(port).map_err(|e| format!("control connect: {e}"))?);
    kill_parent().map_err(|e| format!("control kill: {e}"))?;
    drop(UnixStream::connect_addr(&abstract_addr).map_err(|e| format!("control unix: {e}"))?);

    restrict_to(&[(allowed.clone(), Access::ReadOnly)])?;

    if read(&allowed).map_err(|e| format!("read allowed: {e}"))? != "allowed" {
        return Err("allowed file has the wrong content".into());
    }
    expect_errno("open another file", read(&other), libc::EACCES)?;
    expect_errno(
        "open the read-only file for writing",
        open_write(&allowed),
        libc::EACCES,
    )?;
    expect_errno("create a file", File::create(dir.join("new")), libc::EACCES)?;
    expect_reads(&mut before, "other")?;
    expect_errno("TCP connect", TcpStream::connect(port), libc::EACCES)?;
    expect_errno("TCP bind", TcpListener::bind("127.0.0.1:0"), libc::EACCES)?;
    expect_errno("kill outside the domain", kill_parent(), libc::EPERM)?;
    expect_errno(
        "connect to an abstract unix socket outside the domain",
        UnixStream::connect_addr(&abstract_addr),
        libc::EPERM,
    )
}

/// A read-write directory: files beneath it can be created and written;
/// a path outside it is EACCES.
fn read_write_directory(_: &Child) -> Result<(), String> {
    let dir = setup("read_write_directory")?;
    let outside = scratch("read_write_outside");
    std::fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
    std::fs::write(outside.join("file"), "x").map_err(|e| e.to_string())?;
    restrict_to(&[(dir.clone(), Access::ReadWrite)])?;
    std::fs::write(dir.join("new"), "new").map_err(|e| format!("create beneath: {e}"))?;
    std::fs::write(dir.join("allowed"), "w").map_err(|e| format!("write beneath: {e}"))?;
    expect_errno("read outside", read(&outside.join("file")), libc::EACCES)
}

/// No paths at all, as for a spawned process: every open by path is
/// EACCES, and an fd opened before (its /dev/kvm or image) still works.
fn no_paths_keeps_only_open_fds(_: &Child) -> Result<(), String> {
    let dir = setup("no_paths")?;
    let mut before = File::open(dir.join("allowed")).map_err(|e| e.to_string())?;
    restrict_to(&[])?;
    expect_errno("open a file", read(&dir.join("other")), libc::EACCES)?;
    expect_errno("open /", File::open("/"), libc::EACCES)?;
    expect_reads(&mut before, "allowed")
}

/// A path that does not exist is an error naming it, not a skipped rule.
fn missing_path_is_an_error(_: &Child) -> Result<(), String> {
    let missing = scratch("does-not-exist");
    match restrict(&[(missing.clone(), Access::ReadOnly)]) {
        Err(LandlockError::Path { path, .. }) if path == missing => Ok(()),
        other => Err(format!("expected a Path error, got {other:?}")),
    }
}

fn main() -> ExitCode {
    let code = common::run(&[
        (
            "read_only_file_is_all_there_is",
            read_only_file_is_all_there_is,
        ),
        ("read_write_directory", read_write_directory),
        ("no_paths_keeps_only_open_fds", no_paths_keeps_only_open_fds),
        ("missing_path_is_an_error", missing_path_is_an_error),
    ]);
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("jail-landlock-{}", std::process::id())),
    );
    code
}
