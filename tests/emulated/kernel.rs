//! Debian's kernel, modules and busybox as scripts/fetch-linux.sh lays them
//! out under target/linux/.

use std::path::{Path, PathBuf};

/// A kernel the emulated machines boot, with the files an initramfs takes
/// from beside it.
pub struct Kernel {
    dir: PathBuf,
}

impl Kernel {
    /// Debian's amd64 kernel (PVH vmlinux) from target/linux/. Panics, saying
    /// how to fetch it, when it is not there.
    pub fn debian_amd64() -> Kernel {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux");
        let kernel = Kernel { dir };
        for file in [kernel.vmlinux(), kernel.busybox(), kernel.dir.join("STAMP")] {
            assert!(
                file.exists(),
                "{} is missing: run `bash scripts/fetch-linux.sh` first \
                 (scripts/test.sh does, before the tests)",
                file.display()
            );
        }
        kernel
    }

    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join("vmlinux")
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
