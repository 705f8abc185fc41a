//! Port I/O and the ABI's port calls (exit, wait).
//!
//! Guests run with IOPL 3, so `in`/`out` are allowed at CPL3. A port access
//! only exits to the VMM and touches no guest memory, which is why these
//! wrappers are safe functions.

use core::arch::asm;
use guest_abi::{PORT_EXIT, PORT_WAIT, WAIT_FOREVER};

/// Writes one byte to `port`.
#[inline]
pub fn outb(port: u16, value: u8) {
    // SAFETY: `out` at IOPL 3 exits to the VMM; it reads no memory and
    // changes no register but the ones named here.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Writes four bytes to `port` in one access.
#[inline]
pub fn outl(port: u16, value: u32) {
    // SAFETY: as in `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads one byte from `port`.
#[inline]
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: `in` at IOPL 3 exits to the VMM and writes only AL.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Writes `bytes` to `port` with one `rep outsb`. Fewer guest instructions
/// than a loop of `outb`, but not fewer exits: KVM's emulator runs OUTS one
/// element per exit to the VMM (only INS reads ahead), so this still costs
/// one exit, about 25-50 us on kvm_pvm, per byte.
#[inline]
pub fn outsb(port: u16, bytes: &[u8]) {
    // SAFETY: `rep outsb` reads `bytes.len()` bytes from `bytes.as_ptr()`,
    // all inside the borrowed slice; DF is clear (System V ABI), so it walks
    // upwards. RSI and RCX are clobbered, as declared.
    unsafe {
        asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(readonly, nostack, preserves_flags),
        )
    }
}

/// Hands `bytes` to the VMM in one exit: an `out` to `port` with RSI = the
/// address and RCX = the length, the registers of `rep outsb` (the ABI's
/// console-write call, `PORT_CONSOLE_WRITE`).
#[inline]
pub fn out_buffer(port: u16, bytes: &[u8]) {
    // SAFETY: `out` at IOPL 3 exits to the VMM, which reads `bytes.len()`
    // bytes at `bytes.as_ptr()` (inside the borrowed slice) and changes no
    // guest register; the guest itself reads no memory here.
    unsafe {
        asm!(
            "out dx, al",
            in("dx") port,
            in("al") 0u8,
            in("rsi") bytes.as_ptr(),
            in("rcx") bytes.len(),
            options(readonly, nostack, preserves_flags),
        )
    }
}

/// Ends the sandbox with `status` (a 32-bit write to `PORT_EXIT`).
pub fn exit(status: u32) -> ! {
    outl(PORT_EXIT, status);
    // The VMM does not resume a vCPU after an exit; if one did, sleep.
    loop {
        wait(WAIT_FOREVER);
    }
}

/// Ends the sandbox with `status` and `reason` (at most `EXIT_REASON_MAX`
/// bytes are read), which cordon prints on stderr.
pub fn exit_with_reason(status: u32, reason: &[u8]) -> ! {
    let len = reason.len().min(guest_abi::EXIT_REASON_MAX as usize);
    // SAFETY: an `out` to the exit-reason port; RSI/RCX describe `reason`,
    // which lives for the call; the VMM only reads them and ends the guest.
    unsafe {
        core::arch::asm!(
            "out dx, eax",
            in("dx") guest_abi::PORT_EXIT_REASON,
            in("eax") status,
            in("rsi") reason.as_ptr(),
            in("rcx") len,
            options(nostack, preserves_flags),
        );
    }
    loop {
        wait(WAIT_FOREVER);
    }
}

/// Blocks this vCPU until a device signals or `micros` microseconds pass
/// (`WAIT_FOREVER`: no deadline).
#[inline]
pub fn wait(micros: u32) {
    outl(PORT_WAIT, micros);
}
