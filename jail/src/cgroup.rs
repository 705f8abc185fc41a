//! The per-sandbox cgroup: every process of a sandbox in one cgroup with
//! memory, CPU and pids limits. Memory and CPU limits come from here, not
//! from rlimits, since every process of a sandbox maps all of guest memory.
//!
//! Hierarchies: cgroup v1 (one hierarchy per controller, e.g. hybrid hosts
//! with /sys/fs/cgroup/{memory,cpu,pids}) or v2 (one unified hierarchy with
//! the three controllers available). [`Hierarchy::detect`] reads
//! /proc/self/mountinfo: if any v1 hierarchy carries a controller we need,
//! v1 is used and each of memory, cpu and pids must have one; otherwise the
//! v2 hierarchy must list all three in `cgroup.controllers`. A missing
//! controller is an error naming it; nothing is silently left unlimited.
//!
//! Placement: `<mount><supervisor's own cgroup>/cordon/<name>` in each
//! hierarchy, so a sandbox stays inside whatever limits the supervisor is
//! under. On v2 the supervisor's cgroup gets the controllers enabled in its
//! `cgroup.subtree_control`; the kernel refuses that (EBUSY) while processes
//! sit in it unless it is the root, so a v2 supervisor must run in a cgroup
//! delegated to it with its own processes in a leaf below (systemd:
//! `Delegate=yes`).
//!
//! Joining: the supervisor adds a pid ([`SandboxCgroup::add_pid`]), or the
//! forked child joins itself between fork and exec with [`join_self`] on
//! fds opened in advance ([`SandboxCgroup::join_fds`]), before it enters
//! the sandbox's user namespace, so everything it later clones is charged
//! here from its first page. Removal: [`SandboxCgroup::remove`] (or drop)
//! rmdirs the cgroups once their processes are gone.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Fixed memory overhead on top of guest memory: the vm and device
/// processes' own heaps, stacks, binaries' pages and kernel objects (KVM
/// vCPU state, sockets, eventfds).
pub const MEMORY_OVERHEAD_FIXED: u64 = 64 << 20;
/// Proportional overhead: guest memory / this. Guest memory is one memfd
/// charged once, but each process that maps it has its own page tables
/// (1/512 of the mapped size each, at 4 KiB pages), and KVM's EPT or
/// shadow page tables cost as much again; 1/32 covers ~4 mappers with room.
pub const MEMORY_OVERHEAD_DIVISOR: u64 = 32;
/// The CFS period the CPU quota is expressed in.
pub const CPU_PERIOD_US: u64 = 100_000;
/// Tasks (threads count) a sandbox may have besides its vCPU threads.
pub const PIDS_BASE: u64 = 64;

/// The directory, under the supervisor's own cgroup in each hierarchy,
/// that holds the sandboxes' cgroups (and that an administrator delegates
/// to a user who runs cordon).
pub const PARENT_DIR: &str = "cordon";

/// The controllers a sandbox cgroup needs.
pub const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// Limits for one sandbox. [`Limits::for_sandbox`] derives them from
/// `--mem` and `--cpus`; every field may be overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// memory.max (v2) / memory.limit_in_bytes and memsw (v1), in bytes.
    pub memory_bytes: u64,
    /// CPU time per [`CPU_PERIOD_US`], in microseconds; None: unlimited.
    pub cpu_quota_us: Option<u64>,
    /// pids.max: processes and threads.
    pub pids_max: u64,
}

impl Limits {
    /// memory = mem + 64 MiB + mem / 32; CPU = `cpus` full CPUs
    /// (quota = cpus * 100 ms per 100 ms); pids = 64 + cpus.
    pub fn for_sandbox(mem_mib: u64, cpus: u32) -> Limits {
        let mem = mem_mib << 20;
        Limits {
            memory_bytes: mem + MEMORY_OVERHEAD_FIXED + mem / MEMORY_OVERHEAD_DIVISOR,
            cpu_quota_us: Some(u64::from(cpus.max(1)) * CPU_PERIOD_US),
            pids_max: PIDS_BASE + u64::from(cpus),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read /proc/self/mountinfo or /proc/self/cgroup")]
    Proc(#[source] std::io::Error),
    #[error("the cgroup controller `{0}` is not available on this host (no v1 hierarchy carries it and the v2 hierarchy does not list it)")]
    MissingController(&'static str),
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
    #[error("invalid sandbox cgroup name {0:?}")]
    BadName(String),
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Where the cgroups of the three controllers live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// One directory per controller: the supervisor's own cgroup in that
    /// controller's hierarchy (memory, cpu, pids). Two may be equal when
    /// controllers are co-mounted.
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        pids: PathBuf,
    },
    /// The directory under which sandboxes go, in the unified hierarchy.
    V2 { base: PathBuf },
}

struct Mount {
    point: PathBuf,
    fstype: String,
    options: Vec<String>,
}

fn mounts() -> Result<Vec<Mount>, CgroupError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(CgroupError::Proc)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?.to_owned();
            let options = right.nth(1)?.split(',').map(str::to_owned).collect();
            Some(Mount {
                point: PathBuf::from(point.replace("\\040", " ")),
                fstype,
                options,
            })
        })
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect())
}

/// The supervisor's own cgroup path in the v1 hierarchy carrying
/// `controller` (None for v2's "0::" line).
fn own_path(controller: Option<&str>) -> Result<String, CgroupError> {
    let text = std::fs::read_to_string("/proc/self/cgroup").map_err(CgroupError::Proc)?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next(), parts.next());
        let (Some(ctrls), Some(path)) = (ctrls, path) else {
            continue;
        };
        let matches = match controller {
            Some(c) => ctrls.split(',').any(|x| x == c),
            None => ctrls.is_empty(),
        };
        if matches {
            return Ok(path.to_owned());
        }
    }
    Ok("/".to_owned())
}

fn join_path(mount: &Path, inner: &str) -> PathBuf {
    mount.join(inner.trim_start_matches('/'))
}

impl Hierarchy {
    /// Finds the hierarchies of this host; see the module docs.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        let mounts = mounts()?;
        let v1 = |c: &str| {
            mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.options.iter().any(|o| o == c))
        };
        if CONTROLLERS.iter().any(|c| v1(c).is_some()) {
            let mut dirs = Vec::new();
            for c in CONTROLLERS {
                let m = v1(c).ok_or(CgroupError::MissingController(c))?;
                dirs.push(join_path(&m.point, &own_path(Some(c))?));
            }
            let [memory, cpu, pids]: [PathBuf; 3] =
                dirs.try_into().map_err(|_| CgroupError::NoHierarchy)?;
            return Ok(Hierarchy::V1 { memory, cpu, pids });
        }
        let m = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup2")
            .min_by_key(|m| m.point != Path::new("/sys/fs/cgroup"))
            .ok_or(CgroupError::NoHierarchy)?;
        let base = join_path(&m.point, &own_path(None)?);
        Hierarchy::v2(&m.point, base)
    }

    /// A v2 hierarchy mounted at `mount`, sandboxes under `base` (a
    /// directory inside it). Checks that the three controllers are
    /// available there.
    pub fn v2(mount: &Path, base: PathBuf) -> Result<Hierarchy, CgroupError> {
        let path = mount.join("cgroup.controllers");
        let available = std::fs::read_to_string(&path).map_err(io_err("read", &path))?;
        for c in CONTROLLERS {
            if !available.split_whitespace().any(|x| x == c) {
                return Err(CgroupError::MissingController(c));
            }
        }
        Ok(Hierarchy::V2 { base })
    }
}

/// One sandbox's cgroup, in every hierarchy that holds one of its
/// controllers.
#[derive(Debug)]
pub struct SandboxCgroup {
    /// The cgroup directories, one per distinct hierarchy.
    dirs: Vec<PathBuf>,
    /// The file each is joined through (v1 `tasks`, v2 `cgroup.procs`),
    /// opened for writing.
    procs: Vec<File>,
    removed: bool,
}

/// Raw fds of the files a sandbox's cgroup is joined through, for
/// [`join_self`]. Valid as long as the [`SandboxCgroup`] they came from.
#[derive(Clone, Copy, Debug)]
pub struct CgroupJoin {
    fds: [RawFd; 3],
    len: usize,
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(io_err("write", path))
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(io_err("create", path)(e)),
        _ => Ok(()),
    }
}

impl SandboxCgroup {
    /// Creates the cgroup `cordon/<name>` under each hierarchy's base
    /// directory and writes `limits` into it.
    pub fn create(
        h: &Hierarchy,
        name: &str,
        limits: &Limits,
    ) -> Result<SandboxCgroup, CgroupError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(CgroupError::BadName(name.to_owned()));
        }
        let mut cg = SandboxCgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
            removed: false,
        };
        match h {
            Hierarchy::V1 { memory, cpu, pids } => {
                for base in [memory, cpu, pids] {
                    let dir = base.join(PARENT_DIR).join(name);
                    if !cg.dirs.contains(&dir) {
                        mkdir(&base.join(PARENT_DIR))?;
                        mkdir(&dir)?;
                        cg.dirs.push(dir);
                    }
                }
                let mem = memory.join(PARENT_DIR).join(name);
                let bytes = limits.memory_bytes.to_string();
                write_file(&mem.join("memory.limit_in_bytes"), &bytes)?;
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write_file(&memsw, &bytes)?;
                }
                let cpu = cpu.join(PARENT_DIR).join(name);
                write_file(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                let quota = limits
                    .cpu_quota_us
                    .map_or("-1".to_owned(), |q| q.to_string());
                write_file(&cpu.join("cpu.cfs_quota_us"), &quota)?;
                let pids = pids.join(PARENT_DIR).join(name);
                write_file(&pids.join("pids.max"), &limits.pids_max.to_string())?;
            }
            Hierarchy::V2 { base } => {
                let enable = "+memory +cpu +pids";
                let parent = base.join(PARENT_DIR);
                write_file(&base.join("cgroup.subtree_control"), enable)?;
                mkdir(&parent)?;
                write_file(&parent.join("cgroup.subtree_control"), enable)?;
                let dir = parent.join(name);
                mkdir(&dir)?;
                cg.dirs.push(dir.clone());
                write_file(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write_file(&swap, "0")?;
                }
                let quota = limits
                    .cpu_quota_us
                    .map_or("max".to_owned(), |q| q.to_string());
                write_file(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
                write_file(&dir.join("pids.max"), &limits.pids_max.to_string())?;
            }
        }
        // The file a process joins through by writing "0". On v1, `tasks`:
        // moving only the writing thread (a forked child has one) is the one
        // migration the kernel does without taking cgroup_threadgroup_rwsem
        // for writing, whose first taker waits for an RCU grace period (6 to
        // 17 ms as measured on this kind of host: bench/README.md). On v2
        // the kernel moves threads only within a threaded subtree, so it is
        // cgroup.procs (CLONE_INTO_CGROUP would avoid the lock there).
        let join_file = match h {
            Hierarchy::V1 { .. } => "tasks",
            Hierarchy::V2 { .. } => "cgroup.procs",
        };
        for dir in &cg.dirs {
            let path = dir.join(join_file);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err("open", &path))?;
            cg.procs.push(file);
        }
        Ok(cg)
    }

    /// The cgroup directories (one per distinct hierarchy).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Moves process `pid` (with all its threads) into the sandbox's cgroup.
    pub fn add_pid(&self, pid: libc::pid_t) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The pids in the sandbox's cgroup (from the first hierarchy).
    pub fn pids(&self) -> Result<Vec<libc::pid_t>, CgroupError> {
        let path = self.dirs[0].join("cgroup.procs");
        let text = std::fs::read_to_string(&path).map_err(io_err("read", &path))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// The fds [`join_self`] writes to.
    pub fn join_fds(&self) -> CgroupJoin {
        let mut join = CgroupJoin {
            fds: [-1; 3],
            len: self.procs.len().min(3),
        };
        for (slot, file) in join.fds.iter_mut().zip(&self.procs) {
            *slot = file.as_raw_fd();
        }
        join
    }

    /// Removes the cgroups. Their processes must have exited (zombies
    /// included: reap them first); an exiting process may take a moment to
    /// leave, so EBUSY is retried for up to 1 s.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> Result<(), CgroupError> {
        self.procs.clear();
        self.removed = true;
        let deadline = Instant::now() + Duration::from_secs(1);
        for dir in &self.dirs {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => return Err(io_err("remove", dir)(e)),
                }
            }
        }
        Ok(())
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = self.remove_dirs() {
                log::warn!("sandbox cgroup left behind: {e}");
            }
        }
    }
}

/// Moves the calling process, which must be single-threaded, into the
/// cgroup whose fds `join` holds, by writing "0" (the writer itself) to
/// each.
///
/// Async-signal-safe (only write(2)), so it may run between fork and exec;
/// the fds are open as long as the [`SandboxCgroup`] lives in the parent.
pub fn join_self(join: &CgroupJoin) -> Result<(), crate::namespaces::EnterError> {
    for &fd in &join.fds[..join.len] {
        // SAFETY: writes one byte from a static buffer to an fd.
        if unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) } != 1 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(crate::namespaces::EnterError {
                step: crate::namespaces::ENTER_STEPS[0],
                errno,
            });
        }
    }
    Ok(())
}
