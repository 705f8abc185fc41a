//! A cpio archive in the "newc" format, the one Linux unpacks as an initramfs.

use std::io::{self, Write};

/// Writes entries to `W` as they are added; `finish` appends the trailer.
pub struct Cpio<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// `path` is relative to the archive's root, without a leading '/'.
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | perm, (0, 0), b"")
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, (0, 0), data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | perm, (major, minor), b"")
    }

    /// Appends the trailer and returns the writer (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), b"")?;
        Ok(self.out)
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        let ino = self.next_ino;
        self.next_ino += 1;
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio entry over 4 GiB"))?;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let name_size = name.len() as u32 + 1;
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
        // devminor, rdevmajor, rdevminor, namesize, check
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Header+name and data each end on a 4-byte boundary.
    fn pad(&mut self) -> io::Result<()> {
        let zeros = [0u8; 3];
        let n = ((4 - self.written % 4) % 4) as usize;
        self.put(&zeros[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::Cpio;

    #[test]
    fn entries_are_aligned_and_end_with_the_trailer() {
        let mut cpio = Cpio::new(Vec::new());
        cpio.dir("bin", 0o755).unwrap();
        cpio.file("/init", 0o755, b"#!/bin/sh\n").unwrap();
        let out = cpio.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!\0"));
        // The second header starts on a 4-byte boundary after "bin\0" + pad.
        let second = text
            .find("070701")
            .map(|_| text[6..].find("070701").unwrap() + 6);
        assert_eq!(second.unwrap() % 4, 0);
    }
}
