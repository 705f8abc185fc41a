//! The sandbox cgroup on this host's hierarchy (v1 hybrid here, v2
//! elsewhere), with every other layer off: limits land in the files, pids.max
//! stops forks with EAGAIN, processes join by pid or by themselves, and the
//! cgroup is gone after removal.

mod common;
mod ns_common;

use std::path::Path;

use common::{Case, Child};
use jail::cgroup::{join_self, CgroupError, CgroupJoin, Hierarchy, Limits, SandboxCgroup};

fn name(case: &str) -> String {
    format!("test-{case}-{}", std::process::id())
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The file `file` in whichever of the sandbox's directories has it.
fn value(cg: &SandboxCgroup, file: &str) -> Result<String, String> {
    cg.dirs()
        .iter()
        .find_map(|d| read(d, file))
        .ok_or_else(|| format!("no {file} in {:?}", cg.dirs()))
}

fn limits_land_in_files(_: &Child) -> Result<(), String> {
    let h = Hierarchy::detect().map_err(|e| e.to_string())?;
    let limits = Limits::for_sandbox(256, 2);
    // 256 MiB + 64 MiB + 256 MiB / 32.
    if limits.memory_bytes != (256 + 64 + 8) << 20
        || limits.cpu_quota_us != Some(200_000)
        || limits.pids_max != 66
    {
        return Err(format!("Limits::for_sandbox(256, 2) = {limits:?}"));
    }
    let cg = SandboxCgroup::create(&h, &name("limits"), &limits).map_err(|e| e.to_string())?;
    let expect = |file: &str, want: String| -> Result<(), String> {
        let got = value(&cg, file)?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{file} = {got}, expected {want}"))
        }
    };
    let mem = limits.memory_bytes.to_string();
    match &h {
        Hierarchy::V1 { .. } => {
            expect("memory.limit_in_bytes", mem.clone())?;
            if cg
                .dirs()
                .iter()
                .any(|d| d.join("memory.memsw.limit_in_bytes").exists())
            {
                expect("memory.memsw.limit_in_bytes", mem)?;
            }
            expect("cpu.cfs_period_us", "100000".into())?;
            expect("cpu.cfs_quota_us", "200000".into())?;
        }
        Hierarchy::V2 { .. } => {
            expect("memory.max", mem)?;
            expect("cpu.max", "200000 100000".into())?;
        }
    }
    expect("pids.max", "66".into())?;
    let dirs = cg.dirs().to_vec();
    cg.remove().map_err(|e| e.to_string())?;
    if let Some(d) = dirs.iter().find(|d| d.exists()) {
        return Err(format!("{d:?} still exists after remove"));
    }
    Ok(())
}

/// pids.max = 4: the joined process plus 3 children fill it, the 4th fork
/// fails with EAGAIN. The process joins itself with `join_self`, as the
/// spawn helper's child does between fork and exec.
static JOIN: std::sync::OnceLock<CgroupJoin> = std::sync::OnceLock::new();

fn pids_max_stops_forks(_: &Child) -> Result<(), String> {
    const MAX: u64 = 4;
    let h = Hierarchy::detect().map_err(|e| e.to_string())?;
    let limits = Limits {
        pids_max: MAX,
        ..Limits::for_sandbox(64, 1)
    };
    let cg = SandboxCgroup::create(&h, &name("pids"), &limits).map_err(|e| e.to_string())?;
    JOIN.set(cg.join_fds()).map_err(|_| "JOIN set twice")?;
    let result = common::run_in_child(|_| {
        join_self(JOIN.get().ok_or("no JOIN")?).map_err(|e| e.to_string())?;
        let (hold_r, hold_w) = std::io::pipe().map_err(|e| e.to_string())?;
        let mut children = Vec::new();
        let outcome = loop {
            // SAFETY: single-threaded; each child blocks on the pipe and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                drop(hold_w);
                let mut b = [0u8];
                let _ = std::io::Read::read(&mut &hold_r, &mut b);
                // SAFETY: ends the child.
                unsafe { libc::_exit(0) };
            }
            if pid < 0 {
                break std::io::Error::last_os_error();
            }
            children.push(pid);
            if children.len() > MAX as usize {
                break std::io::Error::from_raw_os_error(0);
            }
        };
        drop(hold_w);
        for pid in &children {
            // SAFETY: our children.
            unsafe { libc::waitpid(*pid, std::ptr::null_mut(), 0) };
        }
        if children.len() as u64 != MAX - 1 || outcome.raw_os_error() != Some(libc::EAGAIN) {
            return Err(format!(
                "{} forks succeeded, then {outcome}; expected {} and EAGAIN",
                children.len(),
                MAX - 1
            ));
        }
        Ok(())
    });
    cg.remove().map_err(|e| format!("remove: {e}"))?;
    result
}

/// The supervisor adds a running process by pid; the cgroup lists it, and
/// can be removed once it has exited and been reaped.
fn add_pid_then_remove(_: &Child) -> Result<(), String> {
    let h = Hierarchy::detect().map_err(|e| e.to_string())?;
    let cg = SandboxCgroup::create(&h, &name("add"), &Limits::for_sandbox(64, 1))
        .map_err(|e| e.to_string())?;
    // SAFETY: single-threaded; the child only pauses until killed.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        loop {
            // SAFETY: waits for a signal.
            unsafe { libc::pause() };
        }
    }
    let added = cg.add_pid(pid).map_err(|e| e.to_string());
    let listed = cg.pids().map_err(|e| e.to_string());
    let busy = std::fs::remove_dir(&cg.dirs()[0]).map_err(|e| e.raw_os_error());
    // SAFETY: our child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    added?;
    if !listed?.contains(&pid) {
        return Err(format!("{pid} not in cgroup.procs"));
    }
    if busy != Err(Some(libc::EBUSY)) {
        return Err(format!(
            "rmdir with a process inside: {busy:?}, expected EBUSY"
        ));
    }
    let dirs = cg.dirs().to_vec();
    cg.remove().map_err(|e| e.to_string())?;
    match dirs.iter().find(|d| d.exists()) {
        Some(d) => Err(format!("{d:?} still exists")),
        None => Ok(()),
    }
}

/// A v2 hierarchy without the memory controller is an error naming it.
fn missing_controller_is_named(_: &Child) -> Result<(), String> {
    let dir = std::env::temp_dir().join(name("fake-v2"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("cgroup.controllers"), "cpuset cpu io pids\n")
        .map_err(|e| e.to_string())?;
    let result = Hierarchy::v2(&dir, dir.clone());
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(e @ CgroupError::MissingController("memory")) if e.to_string().contains("`memory`") => {
            Ok(())
        }
        other => Err(format!("{other:?}, expected MissingController(\"memory\")")),
    }
}

/// Cost of creating (with limits) and removing a sandbox cgroup.
fn cost(_: &Child) -> Result<(), String> {
    const RUNS: u32 = 100;
    let h = Hierarchy::detect().map_err(|e| e.to_string())?;
    let mut failed = None;
    let t = ns_common::time(RUNS, || {
        match SandboxCgroup::create(&h, &name("cost"), &Limits::for_sandbox(64, 1))
            .and_then(SandboxCgroup::remove)
        {
            Ok(()) => {}
            Err(e) => failed = Some(e.to_string()),
        }
    });
    ns_common::report_cost("SandboxCgroup::create + remove", t, RUNS);
    failed.map_or(Ok(()), Err)
}

fn main() -> std::process::ExitCode {
    let cases: &[Case] = &[
        ("limits_land_in_files", limits_land_in_files),
        ("pids_max_stops_forks", pids_max_stops_forks),
        ("add_pid_then_remove", add_pid_then_remove),
        ("missing_controller_is_named", missing_controller_is_named),
        ("cost", cost),
    ];
    common::run(cases)
}
