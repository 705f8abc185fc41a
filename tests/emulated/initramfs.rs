//! An initramfs with busybox-static, kernel modules, test files and an
//! /init that prints markers and powers the machine off.

use super::cpio::Cpio;
use super::kernel::Kernel;
use super::marks::MARK;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The virtio-mmio block stack, in load order.
pub const VIRTIO_BLK: &[&str] = &["virtio_ring", "virtio", "virtio_mmio", "virtio_blk"];

/// Builds an initramfs file. /init moves to a tmpfs root (see `INIT`),
/// mounts proc, sys and devtmpfs, prints
/// `CORDON-MARK init UPTIME`, insmods the modules in the order they were
/// added, runs the test's script with `sh -e` (with `mark NAME VALUE...`
/// defined), prints `CORDON-MARK exit STATUS` and powers off.
pub struct Initramfs<'k> {
    kernel: &'k Kernel,
    path: PathBuf,
    cpio: Cpio<BufWriter<File>>,
    modules: Vec<String>,
}

impl<'k> Initramfs<'k> {
    pub fn new(kernel: &'k Kernel, path: &Path) -> io::Result<Self> {
        let mut cpio = Cpio::new(BufWriter::new(File::create(path)?));
        for dir in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
            cpio.dir(dir, 0o755)?;
        }
        // The kernel opens /dev/console for init before devtmpfs is mounted.
        cpio.char_dev("dev/console", 0o600, 5, 1)?;
        cpio.file("bin/busybox", 0o755, &read(&kernel.busybox())?)?;
        cpio.symlink("bin/sh", "busybox")?;
        Ok(Initramfs {
            kernel,
            path: path.to_owned(),
            cpio,
            modules: Vec::new(),
        })
    }

    /// Adds module `name` from the kernel's package; /init loads it.
    pub fn module(&mut self, name: &str) -> io::Result<&mut Self> {
        let data = read(&self.kernel.module(name))?;
        self.cpio
            .file(&format!("lib/modules/{name}.ko"), 0o644, &data)?;
        self.modules.push(name.to_owned());
        Ok(self)
    }

    pub fn modules(&mut self, names: &[&str]) -> io::Result<&mut Self> {
        for name in names {
            self.module(name)?;
        }
        Ok(self)
    }

    /// A file at `dest` (absolute in the guest; its directory must exist:
    /// /, /bin, /tmp, /lib are there).
    pub fn file(&mut self, dest: &str, perm: u32, data: &[u8]) -> io::Result<&mut Self> {
        self.cpio.file(dest, perm, data)?;
        Ok(self)
    }

    /// A host file (a static cordon, say) copied to `dest`.
    pub fn host_file(&mut self, dest: &str, src: &Path, perm: u32) -> io::Result<&mut Self> {
        let data = read(src)?;
        self.file(dest, perm, &data)
    }

    /// Writes /init around `script` and finishes the archive.
    pub fn finish(mut self, script: &str) -> io::Result<PathBuf> {
        let test = format!("mark() {{ echo \"{MARK} $*\"; }}\n{script}\n");
        self.cpio.file("test.sh", 0o755, test.as_bytes())?;
        let init = INIT
            .replace("@MODULES@", &self.modules.join(" "))
            .replace("@MARK@", MARK);
        self.cpio.file("init", 0o755, init.as_bytes())?;
        let mut out = self.cpio.finish()?;
        out.flush()?;
        Ok(self.path)
    }
}

/// The initramfs is the kernel's rootfs, which pivot_root cannot leave and
/// from whose chroots user namespaces cannot be made: /init first moves
/// everything to a tmpfs and switch_roots there, as a booted system's
/// initramfs does, so cordon's jail works as on any host.
const INIT: &str = r#"#!/bin/busybox sh
if [ "$1" != switched ]; then
    /bin/busybox mkdir /newroot
    /bin/busybox mount -t tmpfs -o mode=755 root /newroot
    for d in /*; do
        [ "$d" = /newroot ] || /bin/busybox cp -a "$d" /newroot/
    done
    exec /bin/busybox switch_root /newroot /init switched
fi
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mark() { echo "@MARK@ $*"; }
mark init "$(cut -d' ' -f1 /proc/uptime)"
for m in @MODULES@; do
    insmod "/lib/modules/$m.ko" || mark insmod-failed "$m"
done
mark modules "$(cut -d' ' -f1 /proc/uptime)"
sh -e /test.sh
mark exit $?
poweroff -f
"#;

fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}
