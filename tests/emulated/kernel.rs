//! Debian's kernels, modules and busybox as scripts/fetch-linux.sh (amd64,
//! target/linux/) and scripts/fetch-linux-arm64.sh (arm64,
//! target/linux-arm64/) lay them out.

use std::path::{Path, PathBuf};

/// A kernel the emulated machines boot, with the files an initramfs takes
/// from beside it.
pub struct Kernel {
    dir: PathBuf,
    /// The kernel file's name in `dir`.
    image: &'static str,
}

impl Kernel {
    /// Debian's amd64 kernel (PVH vmlinux) from target/linux/. Panics, saying
    /// how to fetch it, when it is not there.
    pub fn debian_amd64() -> Kernel {
        Kernel::fetched("target/linux", "vmlinux", "scripts/fetch-linux.sh")
    }

    /// Debian's arm64 kernel (an uncompressed Image, KVM built in) and
    /// arm64 busybox from target/linux-arm64/.
    pub fn debian_arm64() -> Kernel {
        Kernel::fetched(
            "target/linux-arm64",
            "Image",
            "scripts/fetch-linux-arm64.sh",
        )
    }

    fn fetched(dir: &str, image: &'static str, script: &str) -> Kernel {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let kernel = Kernel { dir, image };
        for file in [kernel.image(), kernel.busybox(), kernel.dir.join("STAMP")] {
            assert!(
                file.exists(),
                "{} is missing: run `bash {script}` first \
                 (scripts/test.sh does, before the tests)",
                file.display()
            );
        }
        kernel
    }

    /// The kernel file QEMU's -kernel takes.
    pub fn image(&self) -> PathBuf {
        self.dir.join(self.image)
    }

    /// The amd64 kernel's PVH ELF (the same as `image`).
    pub fn vmlinux(&self) -> PathBuf {
        self.image()
    }

    /// busybox-static's binary.
    pub fn busybox(&self) -> PathBuf {
        self.dir.join("busybox")
    }

    /// `name.ko`, uncompressed; panics if fetch-linux.sh does not collect it.
    pub fn module(&self, name: &str) -> PathBuf {
        let path = self.dir.join("modules").join(format!("{name}.ko"));
        assert!(
            path.exists(),
            "{} is missing: add {name} to MODULES in scripts/fetch-linux.sh",
            path.display()
        );
        path
    }

    /// The pinned package, as the fetch script recorded it.
    pub fn stamp(&self) -> String {
        std::fs::read_to_string(self.dir.join("STAMP")).unwrap_or_default()
    }
}
