//! `_start` and the call into the guest's `main`.

use crate::{console, exit, BootInfo, BAD_BOOT_INFO_EXIT_STATUS};

// Guest ABI v1 entry state: 64-bit mode at CPL3, IF = 0, RDI = boot-info
// address, RSI = vCPU index, RSP = top of this vCPU's stack (16-byte
// aligned). The System V ABI wants RSP 16-byte aligned at a `call` and
// DF clear; enforce both rather than trust them. RBP = 0 ends frame chains.
// `__cordon_guest_start` is defined by the guest's `entry!` and never
// returns; `ud2` would triple-fault if it did.
core::arch::global_asm!(
    ".section .text._start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    cld",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call __cordon_guest_start",
    "    ud2",
    ".size _start, . - _start",
    ".text",
);

/// Defines the guest's entry: `entry!(main)` with
/// `fn main(boot: &'static BootInfo, vcpu: u64) -> u32`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        extern "C" fn __cordon_guest_start(boot: u64, vcpu: u64) -> ! {
            let main: fn(&'static $crate::BootInfo, u64) -> u32 = $main;
            $crate::start(boot, vcpu, main)
        }
    };
}

/// Checks the boot info at `boot_addr`, runs `main` and exits with its
/// status. Called by the code [`entry!`] generates.
pub fn start(boot_addr: u64, vcpu: u64, main: fn(&'static BootInfo, u64) -> u32) -> ! {
    let aligned = boot_addr.is_multiple_of(core::mem::align_of::<BootInfo>() as u64);
    if boot_addr == 0 || !aligned {
        console::write(b"guest: bad boot-info address\n");
        exit(BAD_BOOT_INFO_EXIT_STATUS);
    }
    // SAFETY: Guest ABI v1 puts a readable boot-info area at RDI, which we
    // checked is non-null and aligned; the area is read-only to the guest
    // and never changes while it runs, so a shared 'static borrow holds.
    let boot: &'static BootInfo = unsafe { &*(boot_addr as *const BootInfo) };
    if !boot.is_valid() {
        console::write(b"guest: boot info has a bad magic or version\n");
        exit(BAD_BOOT_INFO_EXIT_STATUS);
    }
    exit(main(boot, vcpu))
}
