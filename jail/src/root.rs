//! The empty root: a process's first act after exec, in its own mount
//! namespace (see [`crate::namespaces`]), is [`enter_empty_root`]. After it
//! the process's whole filesystem is one small, empty, read-only tmpfs: no
//! host path resolves (ENOENT), and the host's mounts are detached from its
//! namespace, not merely hidden under the new root.
//!
//! Steps: make every mount private (MS_REC|MS_PRIVATE, so nothing we do
//! propagates back to the host); mount a tmpfs (size 4 KiB, 2 inodes,
//! nosuid, nodev, noexec, mode 0555) on an existing directory; chdir into
//! it; `pivot_root(".", ".")`, which stacks the old root on top of the new
//! one at the same place; `umount2(".", MNT_DETACH)` detaches the old root;
//! remount the new root read-only; `chdir("/")`.

use std::ffi::CStr;

/// Directories the tmpfs may be mounted on, first existing one wins. Any
/// directory will do: it only serves as a mount point until pivot_root.
const MOUNT_POINTS: [&CStr; 5] = [c"/tmp", c"/mnt", c"/run", c"/dev", c"/proc"];

/// The tmpfs options: one page, two inodes (the root and a spare), owned by
/// root inside the sandbox, unwritable.
const TMPFS_OPTIONS: &CStr = c"size=4k,nr_inodes=2,mode=0555";

const TMPFS_FLAGS: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

#[derive(Debug, thiserror::Error)]
#[error("entering the empty root failed at {step}")]
pub struct RootError {
    pub step: &'static str,
    #[source]
    pub source: std::io::Error,
}

fn check(step: &'static str, ret: libc::c_int) -> Result<(), RootError> {
    if ret == 0 {
        Ok(())
    } else {
        Err(RootError {
            step,
            source: std::io::Error::last_os_error(),
        })
    }
}

/// Replaces the caller's filesystem view with an empty read-only tmpfs.
///
/// Needs CAP_SYS_ADMIN over the caller's mount namespace, which must not be
/// the host's (it is the caller's own after [`crate::namespaces`]); the
/// caller must be single-threaded, or its other threads keep their old root
/// and working directory. Makes no allocation, so it may also run between
/// fork and exec.
pub fn enter_empty_root() -> Result<(), RootError> {
    // SAFETY: every call below passes NUL-terminated static strings or null
    // pointers where the kernel accepts them; none touches our memory beyond
    // the `stat` buffer, which is a valid local.
    unsafe {
        check(
            "mount(/, MS_REC|MS_PRIVATE)",
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
        )?;
        let mut st: libc::stat = std::mem::zeroed();
        let Some(target) = MOUNT_POINTS.iter().find(|dir| {
            libc::stat(dir.as_ptr(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        }) else {
            return Err(RootError {
                step: "finding a mount point for the tmpfs",
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        };
        check(
            "mount(tmpfs)",
            libc::mount(
                c"cordon".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                TMPFS_FLAGS,
                TMPFS_OPTIONS.as_ptr().cast(),
            ),
        )?;
        check("chdir(tmpfs)", libc::chdir(target.as_ptr()))?;
        check(
            "pivot_root(., .)",
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int,
        )?;
        check(
            "umount2(old root, MNT_DETACH)",
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
        )?;
        check(
            "remount / read-only",
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | TMPFS_FLAGS,
                std::ptr::null(),
            ),
        )?;
        check("chdir(/)", libc::chdir(c"/".as_ptr()))
    }
}
