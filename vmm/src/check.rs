//! `cordon check`: what this host offers cordon. Every probe reports why it
//! failed instead of panicking; nothing here forks or changes the process.

use std::error::Error as _;
use std::fmt;
use std::io;

pub mod jail;
pub mod kvm;

pub use jail::{CgroupVersion, JailReport, Landlock, UserNs};
pub use kvm::{CapStatus, KvmInfo, KvmKind, KvmReport, Need, KVM_API_VERSION};

/// Why a probe could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// /dev/kvm did not open read-write.
    #[error("cannot open /dev/kvm")]
    OpenKvm(#[source] io::Error),
    /// A /proc or /sys file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: &'static str,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// A /proc or /sys file did not hold what it should.
    #[error("{path}: no {what} found")]
    Parse {
        /// The file.
        path: &'static str,
        /// What was looked for.
        what: &'static str,
    },
    /// A probing system call failed.
    #[error("{call} failed")]
    Syscall {
        /// The call, with its arguments where they matter.
        call: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

/// What this host offers cordon.
#[derive(Debug)]
pub struct HostReport {
    /// /dev/kvm and its capabilities.
    pub kvm: KvmReport,
    /// What the kernel offers the jail (informational for now).
    pub jail: JailReport,
    /// MemTotal from /proc/meminfo, in KiB.
    pub mem_total_kib: Result<u64, CheckError>,
    /// Online CPUs, from /sys/devices/system/cpu/online.
    pub online_cpus: Result<usize, CheckError>,
}

/// Probes the host. Opens /dev/kvm briefly; forks nothing, installs nothing.
pub fn probe() -> HostReport {
    HostReport {
        kvm: kvm::probe(),
        jail: jail::probe(),
        mem_total_kib: host_memory_kib(),
        online_cpus: read_as("/sys/devices/system/cpu/online", "CPU list", count_cpu_list),
    }
}

impl HostReport {
    /// Whether any guest can run, jailed: today, Guest ABI v1 unikernels.
    pub fn can_run_guests(&self) -> bool {
        self.kvm.usable() && self.jail.ready().is_ok()
    }

    /// Whether Linux guests can run, or why not.
    pub fn linux_guests(&self) -> Result<(), String> {
        let info = match &self.kvm.open {
            Ok(info) if self.kvm.usable() => info,
            _ => return Err("KVM is not usable".into()),
        };
        match self.kvm.kind {
            KvmKind::Pvm => return Err(PVM_RING0.into()),
            KvmKind::Unknown => return Err("unknown kind of KVM".into()),
            _ => {}
        }
        let missing: Vec<&str> = info.missing(Need::LinuxGuests).map(|c| c.name).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {}", missing.join(", ")))
        }
    }
}

/// Why Linux guests are out on kvm_pvm.
const PVM_RING0: &str = "kvm_pvm emulates ring-0 guest code at ~1 us per instruction, without SSE";

/// Width of the label column.
const LABEL: usize = 32;

fn item(f: &mut fmt::Formatter<'_>, label: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {label:<LABEL$} {value}")
}

/// The error and its sources on one line, for "missing (...)".
fn chain(err: &CheckError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn verdict(ok: Result<(), String>) -> String {
    ok.map_or_else(|why| format!("no ({why})"), |()| "yes".into())
}

/// One item for a probe: its value, or `failed (why)`.
fn probed<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    probe: Result<T, &CheckError>,
    failed: &str,
) -> fmt::Result {
    match probe {
        Ok(value) => item(f, label, value),
        Err(e) => item(f, label, format_args!("{failed} ({})", chain(e))),
    }
}

impl HostReport {
    fn fmt_kvm(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "KVM")?;
        item(f, "kind", self.kvm.kind)?;
        let open = self.kvm.open.as_ref();
        probed(f, "/dev/kvm", open.map(|_| "ok"), "missing")?;
        let Ok(info) = open else { return Ok(()) };
        let api = info.api_version;
        if api == KVM_API_VERSION {
            item(f, "API version", api)?;
        } else {
            item(
                f,
                "API version",
                format_args!("{api} (need {KVM_API_VERSION})"),
            )?;
        }
        for cap in &info.caps {
            let state = if cap.present { "ok" } else { "missing" };
            item(f, cap.name, format_args!("{state:<8} {}", cap.need))?;
        }
        item(f, "max vCPUs", info.max_vcpus)
    }

    fn fmt_jail(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let j = &self.jail;
        writeln!(f, "Jail (every part required)")?;
        probed(f, "Landlock", j.landlock.as_ref(), "missing")?;
        if let Ok(abi) = j.landlock.as_ref().map(|l| l.abi()) {
            let since = |v: u32| {
                if abi >= v {
                    "yes"
                } else {
                    "no (needs a newer ABI)"
                }
            };
            item(f, "  TCP bind, connect denied", since(4))?;
            item(f, "  signals, abstract unix scoped", since(6))?;
        }
        probed(
            f,
            "seccomp filters",
            j.seccomp.as_ref().map(|()| "ok"),
            "missing",
        )?;
        probed(f, "user namespaces", j.userns.as_ref(), "missing")?;
        item(f, "cgroup", j.cgroup)?;
        match &j.controllers {
            Ok(h) => item(f, "cgroup controllers", jail::describe_controllers(h))?,
            Err(e) => item(f, "cgroup controllers", format_args!("missing ({e})"))?,
        }
        if j.controllers.is_ok() {
            let state = if j.cgroup_writable {
                "yes"
            } else {
                "no (run as root or delegate <cgroup>/cordon to this user)"
            };
            item(f, "cgroup writable by this user", state)?;
        }
        item(f, "jail", verdict(j.ready()))
    }

    fn fmt_host(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Host")?;
        let gib = |kib: &u64| format!("{:.1} GiB", *kib as f64 / (1024.0 * 1024.0));
        probed(f, "memory", self.mem_total_kib.as_ref().map(gib), "unknown")?;
        probed(f, "online CPUs", self.online_cpus.as_ref(), "unknown")
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_kvm(f)?;
        writeln!(f, "Guests")?;
        let unikernels = if !self.kvm.usable() {
            Err("KVM is not usable".to_string())
        } else {
            self.jail
                .ready()
                .map_err(|why| format!("the jail is {why}; only --no-jail would run"))
        };
        // A module runs in the Wasm runtime, itself a Guest ABI v1 guest.
        item(
            f,
            "WebAssembly modules (WASI p1)",
            verdict(unikernels.clone()),
        )?;
        item(f, "unikernels (Guest ABI v1, CPL3)", verdict(unikernels))?;
        item(f, "Linux guests", verdict(self.linux_guests()))?;
        self.fmt_jail(f)?;
        self.fmt_host(f)
    }
}

/// Reads a /proc or /sys file.
pub(crate) fn read(path: &'static str) -> Result<String, CheckError> {
    std::fs::read_to_string(path).map_err(|source| CheckError::Read { path, source })
}

/// Reads a /proc or /sys file and finds `what` in it with `parse`.
pub(crate) fn read_as<T>(
    path: &'static str,
    what: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, CheckError> {
    parse(&read(path)?).ok_or(CheckError::Parse { path, what })
}

/// The host's MemTotal in KiB (the bound `--mem` is checked against).
pub fn host_memory_kib() -> Result<u64, CheckError> {
    read_as("/proc/meminfo", "MemTotal", parse_mem_total_kib)
}

/// MemTotal, in KiB, from /proc/meminfo text.
fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    let rest = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let mut words = rest.split_whitespace();
    let kib = words.next()?.parse().ok()?;
    matches!(words.next(), Some("kB") | None).then_some(kib)
}

/// How many CPUs a kernel CPU list such as "0-3,8,10-11" names.
fn count_cpu_list(list: &str) -> Option<usize> {
    let list = list.trim();
    if list.is_empty() {
        return Some(0);
    }
    list.split(',').try_fold(0usize, |n, range| {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (lo, hi): (usize, usize) = (lo.parse().ok()?, hi.parse().ok()?);
        Some(n + hi.checked_sub(lo)? + 1)
    })
}

#[cfg(test)]
mod tests;
