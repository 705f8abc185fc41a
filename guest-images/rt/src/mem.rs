//! The memory functions the compiler calls (there is no libc).
//!
//! Each is a single string instruction in inline assembly, so the compiler
//! cannot recognise a copy or fill loop in them and turn it back into a call
//! to the function itself. Rust requires DF clear at every call (System V
//! ABI), which `rep movsb`/`rep stosb`/`repe cmpsb` rely on.

use core::arch::asm;

/// # Safety
/// `dest` and `src` are valid for `n` bytes and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges; `rep movsb` copies exactly
    // `n` bytes upwards and clobbers only RDI, RSI and RCX.
    unsafe {
        asm!("rep movsb", inout("rdi") dest => _, inout("rsi") src => _,
             inout("rcx") n => _, options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// `dest` and `src` are valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // `dest` is below `src` or past its end: a forward copy is safe.
        // SAFETY: same ranges as the caller guarantees; an upward copy reads
        // each source byte before any overlapping write reaches it.
        return unsafe { memcpy(dest, src, n) };
    }
    // SAFETY: `dest` overlaps the end of `src`, so copy downwards from the
    // last byte (n > 0 here, so `n - 1` is in range); DF is set only for
    // this copy and cleared again before returning.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             inout("rcx") n => _, options(nostack));
    }
    dest
}

/// # Safety
/// `dest` is valid for `n` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; `rep stosb` writes exactly
    // `n` bytes upwards and clobbers only RDI and RCX.
    unsafe {
        asm!("rep stosb", inout("rdi") dest => _, inout("rcx") n => _,
             in("al") value as u8, options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// `a` and `b` are valid for `n` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    let (end_a, end_b): (*const u8, *const u8);
    // SAFETY: the caller guarantees both ranges; `repe cmpsb` reads at most
    // `n` bytes of each and stops one past the first difference (or the
    // last byte), which is where we read the result from.
    unsafe {
        asm!("repe cmpsb", inout("rsi") a => end_a, inout("rdi") b => end_b,
             inout("rcx") n => _, options(readonly, nostack));
        i32::from(*end_a.sub(1)) - i32::from(*end_b.sub(1))
    }
}

/// # Safety
/// `a` and `b` are valid for `n` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as `memcmp`.
    unsafe { memcmp(a, b, n) }
}
