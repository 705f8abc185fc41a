//! The last jail layer: the role's seccomp filter, compiled at build time
//! from `seccomp-policies/<target arch>/<role>.json` (see build.rs) and
//! embedded. Debug builds install the same filters as release builds.
//!
//! Every policy's default action is trap: the kernel sends SIGSYS, and the
//! handler `install_sigsys_reporter` installs writes one [`Violation`]
//! record to its report fd and exits with [`VIOLATION_EXIT_CODE`]. The
//! handler's own syscalls (write, exit_group) are in every policy.
//!
//! Filters stack: a child inherits the supervisor's filter and adds its own,
//! and a vCPU thread inherits the vm process's and adds the tighter vcpu one.
//! So the supervisor's policy allows everything any role does, and the vm's
//! everything its vCPUs do (jail/tests/seccomp_policies.rs checks both).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// A process or thread role, one policy each. The vm and vcpu policies are
/// per guest kind (the Linux guest adds its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `cordon run`: still allows what spawning a jailed child needs.
    Supervisor,
    /// The vm process of a unikernel guest (its control thread and, inherited,
    /// every thread it starts).
    VmUnikernel,
    /// A vCPU thread of a unikernel guest, on top of `VmUnikernel`.
    VcpuUnikernel,
    /// The console device process.
    DeviceConsole,
    /// The block device process.
    DeviceBlock,
    /// The rng device process.
    DeviceRng,
}

impl Role {
    /// Every role, in the order of the policy files.
    pub const ALL: [Role; 6] = [
        Role::Supervisor,
        Role::VmUnikernel,
        Role::VcpuUnikernel,
        Role::DeviceConsole,
        Role::DeviceBlock,
        Role::DeviceRng,
    ];

    /// The policy's name: `seccomp-policies/<arch>/<name>.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Supervisor => "supervisor",
            Role::VmUnikernel => "vm-unikernel",
            Role::VcpuUnikernel => "vcpu-unikernel",
            Role::DeviceConsole => "device-console",
            Role::DeviceBlock => "device-block",
            Role::DeviceRng => "device-rng",
        }
    }

    /// Whether `apply` installs the filter on the calling thread only.
    /// The vcpu filter is per thread; every other one is the whole
    /// process's (TSYNC), so a thread started before it is covered too.
    pub const fn per_thread(self) -> bool {
        matches!(self, Role::VcpuUnikernel)
    }

    fn bpf(self) -> &'static [u8] {
        match self {
            Role::Supervisor => include_bytes!(concat!(env!("OUT_DIR"), "/supervisor.bpf")),
            Role::VmUnikernel => include_bytes!(concat!(env!("OUT_DIR"), "/vm-unikernel.bpf")),
            Role::VcpuUnikernel => include_bytes!(concat!(env!("OUT_DIR"), "/vcpu-unikernel.bpf")),
            Role::DeviceConsole => include_bytes!(concat!(env!("OUT_DIR"), "/device-console.bpf")),
            Role::DeviceBlock => include_bytes!(concat!(env!("OUT_DIR"), "/device-block.bpf")),
            Role::DeviceRng => include_bytes!(concat!(env!("OUT_DIR"), "/device-rng.bpf")),
        }
    }

    /// The compiled BPF program of this role's policy.
    pub fn program(self) -> seccompiler::BpfProgram {
        self.bpf()
            .chunks_exact(8)
            .map(|b| seccompiler::sock_filter {
                code: u16::from_le_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot install the {role} seccomp filter: {source}")]
    Install {
        role: &'static str,
        #[source]
        source: seccompiler::Error,
    },
    #[error("cannot install the SIGSYS handler")]
    Sigaction(#[source] std::io::Error),
}

/// Installs `role`'s filter: on the calling thread for a per-thread role
/// (`Role::per_thread`), else on every thread of the process (TSYNC).
/// no_new_privs must be set first (or CAP_SYS_ADMIN held).
pub fn apply(role: Role) -> Result<(), SeccompError> {
    let program = role.program();
    let result = if role.per_thread() {
        seccompiler::apply_filter(&program)
    } else {
        seccompiler::apply_filter_all_threads(&program)
    };
    result.map_err(|source| SeccompError::Install {
        role: role.name(),
        source,
    })
}

/// Exit code of a process ended by a seccomp violation: 128 + SIGSYS (31),
/// what a shell reports for a process killed by SIGSYS.
pub const VIOLATION_EXIT_CODE: i32 = 159;

/// First field of a violation record: "SYSV" read as a little-endian u32.
pub const VIOLATION_MAGIC: u32 = u32::from_le_bytes(*b"SYSV");

/// The record the SIGSYS reporter writes, in one write(2) of 16 bytes,
/// native-endian (the reader is on the same host):
///
/// | offset | size | field                                       |
/// |--------|------|---------------------------------------------|
/// | 0      | 4    | magic, [`VIOLATION_MAGIC`]                  |
/// | 4      | 4    | arch, the AUDIT_ARCH_* of the call (si_arch)|
/// | 8      | 8    | syscall number (si_syscall, sign-extended)  |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// AUDIT_ARCH_X86_64 (0xc000003e), AUDIT_ARCH_AARCH64 (0xc00000b7), ...
    pub arch: u32,
    /// The syscall number for that arch.
    pub syscall: i64,
}

impl Violation {
    /// Size of the record on the wire.
    pub const SIZE: usize = 16;

    /// The record's bytes.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..4].copy_from_slice(&VIOLATION_MAGIC.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..].copy_from_slice(&self.syscall.to_ne_bytes());
        b
    }

    /// Parses a record; None if the magic is wrong.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Option<Violation> {
        let word = |r: std::ops::Range<usize>| b[r].try_into().ok();
        if u32::from_ne_bytes(word(0..4)?) != VIOLATION_MAGIC {
            return None;
        }
        Some(Violation {
            arch: u32::from_ne_bytes(word(4..8)?),
            syscall: i64::from_ne_bytes(b[8..].try_into().ok()?),
        })
    }
}

static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// The SIGSYS part of siginfo_t on Linux (64-bit): the union starts at 16.
#[repr(C)]
struct SigsysInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    call_addr: *mut libc::c_void,
    syscall: i32,
    arch: u32,
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler;
    // for SIGSYS its layout is SigsysInfo's (include/uapi/asm-generic/siginfo.h).
    let (syscall, arch) = unsafe {
        let info = info.cast::<SigsysInfo>();
        ((*info).syscall, (*info).arch)
    };
    let record = Violation {
        arch,
        syscall: i64::from(syscall),
    }
    .to_bytes();
    // SAFETY: write and _exit are async-signal-safe; `record` lives on this
    // stack for the call. A failed write changes nothing: we exit anyway.
    unsafe {
        libc::write(
            REPORT_FD.load(Ordering::Relaxed),
            record.as_ptr().cast(),
            record.len(),
        );
        libc::_exit(VIOLATION_EXIT_CODE)
    }
}

/// Installs the SIGSYS handler that reports a violation on `report_fd` (one
/// 16-byte [`Violation`] record) and exits the process with
/// [`VIOLATION_EXIT_CODE`]. It makes only write and exit_group, allocates
/// nothing, and is process-wide, so it covers every thread.
pub fn install_sigsys_reporter(report_fd: RawFd) -> Result<(), SeccompError> {
    REPORT_FD.store(report_fd, Ordering::Relaxed);
    // SAFETY: sigaction with a zeroed struct, a valid handler of the
    // SA_SIGINFO shape and an empty mask; no old action is read.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigsys
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(SeccompError::Sigaction(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_program() {
        for role in Role::ALL {
            let p = role.program();
            assert!(!p.is_empty(), "{}", role.name());
            assert_eq!(role.bpf().len() % 8, 0);
        }
    }

    #[test]
    fn records_round_trip() {
        let v = Violation {
            arch: 0xc000_003e,
            syscall: 59,
        };
        assert_eq!(Violation::from_bytes(&v.to_bytes()), Some(v));
        assert_eq!(Violation::from_bytes(&[0; 16]), None);
    }
}
