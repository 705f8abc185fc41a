//! Emulated machines for integration tests: QEMU under software emulation
//! (TCG) booting Debian's kernel with a busybox-static initramfs.
//!
//! scripts/fetch-linux.sh puts the pinned kernel, its modules and busybox
//! under target/linux/ (scripts/test.sh runs it before the tests). A test
//! builds an [`Initramfs`] with the modules and files it needs and a shell
//! script; /init runs the script and powers off. The script reports with
//! `mark NAME VALUE...`, which prints `CORDON-MARK NAME VALUE...` on the
//! serial console; [`Machine`] runs QEMU with a timeout (killing its whole
//! process group), under a lock so only one emulated machine runs on the
//! host at a time, and returns the marks in an [`Outcome`].
//!
//! ```ignore
//! #[path = "emulated/mod.rs"] mod emulated; // or `mod emulated;` from tests/
//! let kernel = Kernel::debian_amd64();
//! let scratch = Scratch::new("example");
//! let mut initramfs = Initramfs::new(&kernel, &scratch.path("initrd"))?;
//! initramfs.modules(VIRTIO_BLK)?;
//! let initrd = initramfs.finish("mark disk $(cat /sys/block/vda/size)")?;
//! let outcome = Machine::microvm(&kernel, &initrd).args(["-device", "..."]).run();
//! outcome.expect_clean_exit();
//! ```

#![allow(dead_code, unused_imports)]

pub mod cases;
pub mod cpio;
pub mod disk;
pub mod initramfs;
pub mod kernel;
pub mod lock;
pub mod machine;
pub mod marks;
pub mod process;
pub mod scratch;
pub mod tsc;

pub use initramfs::{Initramfs, VIRTIO_BLK};
pub use kernel::Kernel;
pub use machine::{Machine, Outcome, Running};
pub use marks::Mark;
pub use process::Group;
pub use scratch::Scratch;
