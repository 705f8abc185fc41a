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
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

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

    /// The program for `mode`: in [`Mode::Log`] every "return trap" of the
    /// policy becomes "return log", so a forbidden call runs and the kernel
    /// logs it (audit type 1326 in the kernel log) instead of killing.
    pub fn program_for(self, mode: Mode) -> seccompiler::BpfProgram {
        let mut program = self.program();
        if mode == Mode::Log {
            for insn in &mut program {
                if insn.code == BPF_RET_K && insn.k == SECCOMP_RET_TRAP {
                    insn.k = SECCOMP_RET_LOG;
                }
            }
        }
        program
    }
}

/// What a filter does with a call its policy does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Trap: the SIGSYS reporter reports it and the process ends.
    Enforce,
    /// For finding missing rules (`cordon run --seccomp log`): the call
    /// runs and the kernel logs it. Never for production.
    Log,
}

/// BPF_RET | BPF_K: return the constant k.
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot install the {role} seccomp filter")]
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
pub fn apply(role: Role, mode: Mode) -> Result<(), SeccompError> {
    let program = role.program_for(mode);
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

/// AUDIT_ARCH_X86_64.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_AARCH64.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// si_code of a SIGSYS the kernel raised for a seccomp trap.
const SYS_SECCOMP: i32 = 1;

impl Violation {
    /// The record for a SIGSYS that seccomp did not raise (another process
    /// sent it with kill(2)): no syscall to name, but the process is ended
    /// all the same.
    pub const NOT_SECCOMP: Violation = Violation {
        arch: 0,
        syscall: -1,
    };

    /// The architecture's name, for reports.
    pub fn arch_name(self) -> &'static str {
        match self.arch {
            AUDIT_ARCH_X86_64 => "x86_64",
            AUDIT_ARCH_AARCH64 => "aarch64",
            _ => "an unknown architecture",
        }
    }

    /// The syscall's name, if the number is known for the architecture.
    pub fn syscall_name(self) -> Option<&'static str> {
        let table = match self.arch {
            AUDIT_ARCH_X86_64 => crate::syscall_names::X86_64,
            AUDIT_ARCH_AARCH64 => crate::syscall_names::AARCH64,
            _ => return None,
        };
        table
            .binary_search_by_key(&self.syscall, |&(nr, _)| nr)
            .ok()
            .map(|i| table[i].1)
    }

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
/// Whether the handler writes a line of text instead of a record.
static REPORT_TEXT: AtomicBool = AtomicBool::new(false);

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
    let (code, syscall, arch) = unsafe {
        let info = info.cast::<SigsysInfo>();
        ((*info).code, (*info).syscall, (*info).arch)
    };
    let violation = if code == SYS_SECCOMP {
        Violation {
            arch,
            syscall: i64::from(syscall),
        }
    } else {
        Violation::NOT_SECCOMP
    };
    let mut text = [0u8; 96];
    let bytes: &[u8] = if REPORT_TEXT.load(Ordering::Relaxed) {
        violation.write_line(&mut text)
    } else {
        &violation.to_bytes()
    };
    // SAFETY: write and _exit are async-signal-safe; `bytes` lives on this
    // stack for the call. A failed write changes nothing: we exit anyway.
    unsafe {
        libc::write(
            REPORT_FD.load(Ordering::Relaxed),
            bytes.as_ptr().cast(),
            bytes.len(),
        );
        libc::_exit(VIOLATION_EXIT_CODE)
    }
}

impl Violation {
    /// "cordon: seccomp violation: syscall N (arch 0x...)\n" into `buf`,
    /// without allocating (for the signal handler).
    fn write_line(self, buf: &mut [u8; 96]) -> &[u8] {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if at < buf.len() {
                    buf[at] = b;
                    at += 1;
                }
            }
        };
        put(b"cordon: seccomp violation in the supervisor: syscall ");
        let mut digits = [0u8; 20];
        put(decimal(self.syscall, &mut digits));
        put(b" (arch 0x");
        let mut hex = [0u8; 8];
        for (i, d) in hex.iter_mut().enumerate() {
            *d = b"0123456789abcdef"[(self.arch >> (28 - 4 * i) & 0xf) as usize];
        }
        put(&hex);
        put(b")\n");
        &buf[..at]
    }
}

/// `n` in decimal, into the end of `buf`.
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut value = n.unsigned_abs();
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 || start == 1 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        buf[start] = b'-';
    }
    &buf[start..]
}

/// Installs the SIGSYS handler that reports a violation on `report_fd` (one
/// 16-byte [`Violation`] record) and exits the process with
/// [`VIOLATION_EXIT_CODE`]. It makes only write and exit_group, allocates
/// nothing, and is process-wide, so it covers every thread.
pub fn install_sigsys_reporter(report_fd: RawFd) -> Result<(), SeccompError> {
    REPORT_FD.store(report_fd, Ordering::Relaxed);
    REPORT_TEXT.store(false, Ordering::Relaxed);
    install_handler()
}

/// Like [`install_sigsys_reporter`], for the supervisor: the handler writes
/// one line of text (syscall number and arch) to `fd`, normally stderr.
pub fn install_sigsys_printer(fd: RawFd) -> Result<(), SeccompError> {
    REPORT_FD.store(fd, Ordering::Relaxed);
    REPORT_TEXT.store(true, Ordering::Relaxed);
    install_handler()
}

fn install_handler() -> Result<(), SeccompError> {
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
    fn log_mode_turns_every_trap_into_log() {
        for role in Role::ALL {
            let traps = |p: &seccompiler::BpfProgram, k| {
                p.iter().filter(|i| i.code == BPF_RET_K && i.k == k).count()
            };
            let enforce = role.program_for(Mode::Enforce);
            let log = role.program_for(Mode::Log);
            assert!(traps(&enforce, SECCOMP_RET_TRAP) > 0, "{}", role.name());
            assert_eq!(traps(&log, SECCOMP_RET_TRAP), 0, "{}", role.name());
            assert_eq!(
                traps(&log, SECCOMP_RET_LOG),
                traps(&enforce, SECCOMP_RET_TRAP)
            );
        }
    }

    #[test]
    fn the_printed_line_names_the_syscall_and_arch() {
        let mut buf = [0u8; 96];
        let v = Violation {
            arch: 0xc000_003e,
            syscall: 59,
        };
        assert_eq!(
            v.write_line(&mut buf),
            b"cordon: seccomp violation in the supervisor: syscall 59 (arch 0xc000003e)\n"
        );
        let mut digits = [0u8; 20];
        assert_eq!(decimal(-1, &mut digits), b"-1");
        assert_eq!(decimal(0, &mut digits), b"0");
    }

    #[test]
    fn violations_name_their_syscall() {
        let x86 = |syscall| Violation {
            arch: AUDIT_ARCH_X86_64,
            syscall,
        };
        assert_eq!(x86(59).syscall_name(), Some("execve"));
        assert_eq!(x86(257).syscall_name(), Some("openat"));
        assert_eq!(x86(100_000).syscall_name(), None);
        let arm = Violation {
            arch: AUDIT_ARCH_AARCH64,
            syscall: 221,
        };
        assert_eq!(
            (arm.arch_name(), arm.syscall_name()),
            ("aarch64", Some("execve"))
        );
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
