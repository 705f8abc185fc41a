//! The sandbox namespaces, with every other layer off: processes started
//! the way the spawn helper starts them (fork, `enter_in_child`) are pid 1
//! of their own pid namespace, see only a down loopback, keep hostname
//! changes inside their sandbox, and cannot reach another sandbox's
//! processes.

mod common;
mod ns_common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicI32, Ordering};

use common::{Case, Child};
use jail::namespaces::{hostname, interface_is_up, SandboxNamespaces, HOSTNAME};
use ns_common::{expect_ret_errno, spawn_in};

fn create() -> Result<SandboxNamespaces, String> {
    SandboxNamespaces::create().map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))
}

fn pid_one(_: &Child) -> Result<(), String> {
    let ns = create()?;
    spawn_in(&ns, || {
        // SAFETY: getpid/getppid cannot fail.
        let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
        if pid != 1 || ppid != 0 {
            return Err(format!(
                "getpid() = {pid}, getppid() = {ppid}; expected 1 and 0"
            ));
        }
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if uid != 0 || gid != 0 {
            return Err(format!("uid {uid}, gid {gid} inside; expected 0, 0"));
        }
        Ok(())
    })?
    .wait()
}

/// The process is in the sandbox's user, net, ipc and uts namespaces (the
/// ones the fds name) and in mount and pid namespaces that are neither the
/// host's nor another process's of the same sandbox.
fn namespace_identity(_: &Child) -> Result<(), String> {
    let ns = create()?;
    static HOST_MNT: AtomicI32 = AtomicI32::new(0);
    static HOST_PID: AtomicI32 = AtomicI32::new(0);
    let ino = |p: &str| {
        std::fs::metadata(p)
            .map(|m| m.ino())
            .map_err(|e| format!("{p}: {e}"))
    };
    HOST_MNT.store(ino("/proc/self/ns/mnt")? as i32, Ordering::Relaxed);
    HOST_PID.store(
        ino("/proc/self/ns/pid_for_children")? as i32,
        Ordering::Relaxed,
    );
    let fds = ns.fds();
    let check = move || -> Result<(), String> {
        for (name, fd) in [
            ("user", fds.user),
            ("net", fds.net),
            ("ipc", fds.ipc),
            ("uts", fds.uts),
        ] {
            let file = std::mem::ManuallyDrop::new(
                // SAFETY: a borrowed view of the inherited fd, never closed.
                unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            );
            let want = file.metadata().map_err(|e| e.to_string())?.ino();
            if ino(&format!("/proc/self/ns/{name}"))? != want {
                return Err(format!("not in the sandbox's {name} namespace"));
            }
        }
        if ino("/proc/self/ns/mnt")? as i32 == HOST_MNT.load(Ordering::Relaxed)
            || ino("/proc/self/ns/pid")? as i32 == HOST_PID.load(Ordering::Relaxed)
        {
            return Err("shares the host's mount or pid namespace".into());
        }
        Ok(())
    };
    spawn_in(&ns, check)?.wait()?;
    spawn_in(&ns, check)?.wait()
}

fn only_loopback_and_down(_: &Child) -> Result<(), String> {
    // The host's interfaces, to prove they are absent inside.
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "lo")
        .collect();
    let ns = create()?;
    spawn_in(&ns, move || {
        // SAFETY: if_nameindex returns a malloc'd array ending with a zero
        // entry, freed with if_freenameindex.
        let names = unsafe {
            let list = libc::if_nameindex();
            if list.is_null() {
                return Err(format!("if_nameindex: {}", std::io::Error::last_os_error()));
            }
            let mut names = Vec::new();
            let mut p = list;
            while (*p).if_index != 0 {
                names.push(
                    std::ffi::CStr::from_ptr((*p).if_name)
                        .to_string_lossy()
                        .into_owned(),
                );
                p = p.add(1);
            }
            libc::if_freenameindex(list);
            names
        };
        if names != ["lo"] {
            return Err(format!("interfaces inside: {names:?}"));
        }
        match interface_is_up("lo") {
            Ok(false) => {}
            other => return Err(format!("lo: {other:?}, expected down")),
        }
        for name in &host {
            common::expect_errno(name, interface_is_up(name), libc::ENODEV)?;
        }
        Ok(())
    })?
    .wait()
}

fn hostname_stays_in_sandbox(_: &Child) -> Result<(), String> {
    let host = hostname().map_err(|e| e.to_string())?;
    let ns = create()?;
    spawn_in(&ns, || {
        let name = hostname().map_err(|e| e.to_string())?;
        if name != HOSTNAME {
            return Err(format!("hostname inside is {name:?}"));
        }
        let new = b"changed-inside";
        // SAFETY: valid buffer and length.
        if unsafe { libc::sethostname(new.as_ptr().cast(), new.len()) } != 0 {
            return Err(format!("sethostname: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    })?
    .wait()?;
    if hostname().map_err(|e| e.to_string())? != host {
        return Err("the hostname change reached the host".into());
    }
    // The uts namespace is the sandbox's: its next process sees the change.
    spawn_in(&ns, || match hostname() {
        Ok(n) if n == "changed-inside" => Ok(()),
        other => Err(format!("second process of the sandbox sees {other:?}")),
    })?
    .wait()?;
    // Another sandbox does not.
    let other = create()?;
    spawn_in(&other, || match hostname() {
        Ok(n) if n == HOSTNAME => Ok(()),
        other => Err(format!("another sandbox sees {other:?}")),
    })?
    .wait()
}

/// A process of sandbox B cannot signal or ptrace a process of sandbox A,
/// nor one of its own sandbox: its pid namespace holds only itself (ESRCH).
fn sandboxes_cannot_reach_each_other(_: &Child) -> Result<(), String> {
    static VICTIM: AtomicI32 = AtomicI32::new(0);
    let a = create()?;
    let b = create()?;
    let (hold_r, hold_w) = std::io::pipe().map_err(|e| e.to_string())?;
    let (hold, hold_copy) = (hold_r.as_raw_fd(), hold_w.as_raw_fd());
    let victim = spawn_in(&a, move || {
        // SAFETY: closes the inherited copy of the write end.
        unsafe { libc::close(hold_copy) };
        // Blocks until the test process closes the write end (it is the
        // only copy left once the attackers have exited).
        let mut byte = 0u8;
        // SAFETY: reads one byte into a local.
        unsafe { libc::read(hold, (&mut byte as *mut u8).cast(), 1) };
        Ok(())
    })?;
    drop(hold_r);
    VICTIM.store(victim.pid, Ordering::Relaxed);
    let attack = || -> Result<(), String> {
        let victim = VICTIM.load(Ordering::Relaxed);
        // SAFETY: kill and ptrace with these arguments touch no memory of ours.
        unsafe {
            expect_ret_errno(
                "kill(victim, SIGKILL)",
                libc::kill(victim, libc::SIGKILL).into(),
                libc::ESRCH,
            )?;
            expect_ret_errno("kill(victim, 0)", libc::kill(victim, 0).into(), libc::ESRCH)?;
            expect_ret_errno(
                "kill(-1, SIGKILL)",
                libc::kill(-1, libc::SIGKILL).into(),
                libc::ESRCH,
            )?;
            expect_ret_errno(
                "ptrace(PTRACE_ATTACH, victim)",
                libc::ptrace(libc::PTRACE_ATTACH, victim, 0, 0),
                libc::ESRCH,
            )?;
            expect_ret_errno(
                "pidfd_open(victim)",
                libc::syscall(libc::SYS_pidfd_open, victim, 0),
                libc::ESRCH,
            )?;
        }
        Ok(())
    };
    let from_b = spawn_in(&b, attack)?.wait();
    let from_a = spawn_in(&a, attack)?.wait();
    // The victim survived both: it is still blocked, and exits 0 once
    // released.
    let mut status = 0;
    // SAFETY: the victim is our child; WNOHANG does not block.
    let alive = unsafe { libc::waitpid(victim.pid, &mut status, libc::WNOHANG) } == 0;
    drop(hold_w);
    let released = victim.wait();
    from_b.map_err(|e| format!("from another sandbox: {e}"))?;
    from_a.map_err(|e| format!("from the same sandbox: {e}"))?;
    if !alive {
        return Err("the victim died".into());
    }
    released
}

/// Item 6: an unprivileged user (no capabilities on the host) creates the
/// sandbox namespaces and starts processes in them.
fn unprivileged_user(_: &Child) -> Result<(), String> {
    ns_common::become_unprivileged(65534)?;
    let ns = create()?;
    spawn_in(&ns, || {
        // SAFETY: getpid/getuid cannot fail.
        let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
        if pid != 1 || uid != 0 {
            return Err(format!("pid {pid}, uid {uid}"));
        }
        jail::root::enter_empty_root().map_err(|e| e.to_string())?;
        common::expect_errno(
            "/etc/passwd",
            std::fs::File::open("/etc/passwd"),
            libc::ENOENT,
        )
    })?
    .wait()
}

/// Cost of the steps, over 100 runs each.
fn cost(_: &Child) -> Result<(), String> {
    const RUNS: u32 = 100;
    let mut failed = None;
    let t = ns_common::time(RUNS, || {
        if let Err(e) = SandboxNamespaces::create() {
            failed = Some(e.to_string());
        }
    });
    ns_common::report_cost("SandboxNamespaces::create", t, RUNS);
    let ns = create()?;
    let t = ns_common::time(RUNS, || {
        match spawn_in(&ns, || Ok(())).and_then(|j| j.wait()) {
            Ok(()) => {}
            Err(e) => failed = Some(e),
        }
    });
    ns_common::report_cost(
        "fork + enter_in_child + collect_child + exit + wait",
        t,
        RUNS,
    );
    let t = ns_common::time(RUNS, || {
        // SAFETY: single-threaded; the child exits at once.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    });
    ns_common::report_cost("baseline: plain fork + exit + wait", t, RUNS);
    failed.map_or(Ok(()), Err)
}

fn main() -> std::process::ExitCode {
    let cases: &[Case] = &[
        ("pid_one", pid_one),
        ("namespace_identity", namespace_identity),
        ("only_loopback_and_down", only_loopback_and_down),
        ("hostname_stays_in_sandbox", hostname_stays_in_sandbox),
        (
            "sandboxes_cannot_reach_each_other",
            sandboxes_cannot_reach_each_other,
        ),
        ("unprivileged_user", unprivileged_user),
        ("cost", cost),
    ];
    common::run(cases)
}
