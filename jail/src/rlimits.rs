//! Resource limits of a jailed process: no core dumps, a bounded fd table,
//! no real-time or raised scheduling priority, no POSIX message queues.
//!
//! Every limit is set soft = hard, so the process cannot raise it again
//! (raising a hard limit needs CAP_SYS_RESOURCE, which the jail drops).
//!
//! What is deliberately not here:
//! - Memory and CPU: every cordon process maps all of guest memory, so
//!   RLIMIT_AS/RLIMIT_DATA would be wrong or meaningless; the sandbox's
//!   cgroup bounds memory, CPU and pids.
//! - RLIMIT_NPROC: it counts every process and thread of the real uid in
//!   the user namespace, not of this process, so a value here would be
//!   shared by all the processes of a sandbox (and by its vm's vCPU and the
//!   backends' worker threads), and it does not apply to uid 0 of the
//!   initial user namespace at all. The cgroup's pids controller bounds the
//!   sandbox, and seccomp keeps the roles from forking.
//! - RLIMIT_FSIZE: exceeding it raises SIGXFSZ in the block backend rather
//!   than an error a guest request could be failed with.

use std::io;

/// The limits a role asks for; everything else in this module is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NOFILE: one more than the highest fd number the process may
    /// open from now on (fds already open above it stay open). A device
    /// backend needs a few dozen, e.g. 64.
    pub max_open_files: u64,
}

/// Why a limit could not be set.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// setrlimit failed: EPERM when raising a hard limit without
    /// CAP_SYS_RESOURCE, EINVAL for RLIMIT_NOFILE above fs.nr_open.
    #[error("setrlimit({name}, {value}) failed")]
    Set {
        name: &'static str,
        value: u64,
        source: io::Error,
    },
    /// The kernel accepted the limit but reads back another one.
    #[error("{name} reads back as soft {soft} / hard {hard} after setting {value}")]
    Mismatch {
        name: &'static str,
        value: u64,
        soft: u64,
        hard: u64,
    },
}

/// The fixed limits, with their names for errors.
const FIXED: [(libc::__rlimit_resource_t, &str, u64); 4] = [
    // No core dumps: a crashed backend must not write guest memory to disk.
    (libc::RLIMIT_CORE, "RLIMIT_CORE", 0),
    // No SCHED_FIFO/SCHED_RR without CAP_SYS_NICE: a real-time spinning
    // backend would starve the host.
    (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO", 0),
    // Nice value may not be lowered (ceiling 20 - 0 = nice 20).
    (libc::RLIMIT_NICE, "RLIMIT_NICE", 0),
    // No bytes of POSIX message queues.
    (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 0),
];

fn set(
    resource: libc::__rlimit_resource_t,
    name: &'static str,
    value: u64,
) -> Result<(), RlimitError> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid rlimit that setrlimit only reads.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(RlimitError::Set {
            name,
            value,
            source: io::Error::last_os_error(),
        });
    }
    let mut read = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `read` is a valid rlimit that getrlimit fills in.
    if unsafe { libc::getrlimit(resource, &mut read) } != 0 {
        return Err(RlimitError::Set {
            name,
            value,
            source: io::Error::last_os_error(),
        });
    }
    if read.rlim_cur != value || read.rlim_max != value {
        return Err(RlimitError::Mismatch {
            name,
            value,
            soft: read.rlim_cur,
            hard: read.rlim_max,
        });
    }
    Ok(())
}

/// Sets RLIMIT_NOFILE from `limits` and the fixed limits (RLIMIT_CORE,
/// RLIMIT_RTPRIO, RLIMIT_NICE and RLIMIT_MSGQUEUE to 0), each soft = hard,
/// and reads each back.
pub fn apply(limits: &Limits) -> Result<(), RlimitError> {
    set(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE", limits.max_open_files)?;
    for (resource, name, value) in FIXED {
        set(resource, name, value)?;
    }
    Ok(())
}
