//! One emulated machine at a time on this host, across test binaries and
//! concurrent `cargo test` runs: an flock on a file under target/.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held while a machine runs; dropping it closes the file and releases the lock.
pub struct MachineLock {
    _file: File,
    pub waited: Duration,
}

impl MachineLock {
    pub fn acquire() -> io::Result<MachineLock> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("emulated-machine.lock"))?;
        let start = Instant::now();
        loop {
            // SAFETY: flock(2) takes no pointers and the fd is ours and open.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(MachineLock {
            _file: file,
            waited: start.elapsed(),
        })
    }
}
