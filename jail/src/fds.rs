//! Fd hygiene: a jailed process keeps exactly the fds on its keep list.
//!
//! The keep list is explicit: stdin, stdout and stderr survive only when
//! listed. `close_range(2)` closes each gap between kept fds (three calls
//! for a list of two); iterating `/proc/self/fd` is the fallback used only
//! when the kernel lacks `close_range` (Linux < 5.9).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Why the fds could not all be closed.
#[derive(Debug, thiserror::Error)]
pub enum FdsError {
    /// A negative fd on the keep list is a caller bug, not something to skip.
    #[error("keep list holds a negative fd: {0}")]
    NegativeFd(RawFd),
    /// `close_range` failed for a reason other than being absent.
    #[error("close_range({first}, {last}) failed")]
    CloseRange {
        first: u32,
        last: u32,
        source: io::Error,
    },
    /// The kernel lacks `close_range` and `/proc/self/fd` cannot be listed
    /// either (no /proc in this mount namespace).
    #[error("kernel lacks close_range (Linux >= 5.9) and /proc/self/fd cannot be read: {0}")]
    NoCloseRangeNoProc(io::Error),
    /// An entry of `/proc/self/fd` was not a number.
    #[error("unexpected entry in /proc/self/fd: {0:?}")]
    ProcEntry(std::ffi::OsString),
    /// close(2) of an fd listed in /proc/self/fd failed.
    #[error("close({fd}) failed")]
    Close { fd: RawFd, source: io::Error },
}

/// The kept fds, sorted and deduplicated, or the first negative one.
fn sorted_keep(keep: &[RawFd]) -> Result<Vec<u32>, FdsError> {
    let mut sorted = keep
        .iter()
        .map(|&fd| u32::try_from(fd).map_err(|_| FdsError::NegativeFd(fd)))
        .collect::<Result<Vec<u32>, FdsError>>()?;
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sorted)
}

/// The inclusive ranges of fd numbers not on the (sorted, deduplicated)
/// keep list, up to `u32::MAX`.
fn gaps(sorted_keep: &[u32]) -> Vec<(u32, u32)> {
    let mut ranges = Vec::with_capacity(sorted_keep.len() + 1);
    let mut next = 0u32;
    for &fd in sorted_keep {
        if fd > next {
            ranges.push((next, fd - 1));
        }
        match fd.checked_add(1) {
            Some(n) => next = n,
            None => return ranges,
        }
    }
    ranges.push((next, u32::MAX));
    ranges
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range takes two integers and a flags word and touches
    // no memory of ours; closing fds Rust objects still own is the point of
    // this function and documented on `close_all_except`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::from(first),
            libc::c_uint::from(last),
            0 as libc::c_uint,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Closes every fd of the process that is not in `keep`.
///
/// Stdio is closed unless 0, 1 or 2 are listed. Call it while the process
/// has a single thread, before anything else opens an fd: any Rust object
/// still owning a closed fd (a `File`, a socket) must not be used again.
/// Uses `close_range(2)`; only when the kernel lacks it (`ENOSYS`) does it
/// fall back to [`close_all_except_via_proc`].
pub fn close_all_except(keep: &[RawFd]) -> Result<(), FdsError> {
    let sorted = sorted_keep(keep)?;
    for (first, last) in gaps(&sorted) {
        match close_range(first, last) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                return close_all_except_via_proc(keep);
            }
            Err(source) => {
                return Err(FdsError::CloseRange {
                    first,
                    last,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// The fallback of [`close_all_except`] for kernels without `close_range`:
/// lists `/proc/self/fd` and closes each fd not in `keep`. Public so that
/// tests can exercise it on kernels that have `close_range`.
pub fn close_all_except_via_proc(keep: &[RawFd]) -> Result<(), FdsError> {
    let sorted = sorted_keep(keep)?;
    // Collect first, close after: the directory's own fd is open while
    // listing and is closed when `dir` drops.
    let mut open = Vec::new();
    {
        let dir = std::fs::read_dir("/proc/self/fd").map_err(FdsError::NoCloseRangeNoProc)?;
        for entry in dir {
            let name = entry.map_err(FdsError::NoCloseRangeNoProc)?.file_name();
            let fd: RawFd = name
                .to_str()
                .and_then(|s| s.parse().ok())
                .ok_or(FdsError::ProcEntry(name))?;
            open.push(fd);
        }
    }
    for fd in open {
        if u32::try_from(fd).is_ok_and(|fd| sorted.binary_search(&fd).is_ok()) {
            continue;
        }
        // SAFETY: close takes an integer; see `close_all_except` on fds
        // still owned by Rust objects.
        if unsafe { libc::close(fd) } != 0 {
            let source = io::Error::last_os_error();
            // The listing's own fd is already closed: EBADF for it is fine.
            if source.raw_os_error() != Some(libc::EBADF) {
                return Err(FdsError::Close { fd, source });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_cover_everything_but_the_keep_list() {
        assert_eq!(gaps(&[]), vec![(0, u32::MAX)]);
        assert_eq!(gaps(&[0, 1, 2]), vec![(3, u32::MAX)]);
        assert_eq!(gaps(&[3]), vec![(0, 2), (4, u32::MAX)]);
        assert_eq!(gaps(&[3, 4, 9]), vec![(0, 2), (5, 8), (10, u32::MAX)]);
        assert_eq!(gaps(&[0, u32::MAX]), vec![(1, u32::MAX - 1)]);
    }

    #[test]
    fn keep_list_is_sorted_deduplicated_and_rejects_negatives() {
        assert_eq!(sorted_keep(&[9, 3, 9, 0]).unwrap(), vec![0, 3, 9]);
        assert!(matches!(
            sorted_keep(&[3, -1]),
            Err(FdsError::NegativeFd(-1))
        ));
    }
}
