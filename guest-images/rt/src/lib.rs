//! Runtime for cordon's freestanding guests (Guest ABI v1, x86_64).
//!
//! A guest is a `#![no_std] #![no_main]` binary that names its entry with
//! [`entry!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use guest_rt::BootInfo;
//!
//! fn main(boot: &'static BootInfo, vcpu: u64) -> u32 {
//!     guest_rt::println!("hello from vCPU {vcpu}");
//!     0
//! }
//! guest_rt::entry!(main);
//! ```
//!
//! `_start` (in [`entry`]) sets up the call into Rust; `main`'s return value
//! becomes the sandbox's exit status. A panic prints its message and exits
//! with [`PANIC_EXIT_STATUS`].
#![no_std]

pub mod boot;
pub mod console;
mod entry;
mod mem;
pub mod port;

pub use entry::start;
pub use guest_abi::{self as abi, BootInfo};
pub use port::{exit, exit_with_reason, wait};

/// Exit status of a guest that panicked.
pub const PANIC_EXIT_STATUS: u32 = 101;
/// Exit status of a guest whose boot info lacks the ABI's magic or version.
pub const BAD_BOOT_INFO_EXIT_STATUS: u32 = 102;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => println!("guest panicked at {loc}: {}", info.message()),
        None => println!("guest panicked: {}", info.message()),
    }
    exit(PANIC_EXIT_STATUS)
}
