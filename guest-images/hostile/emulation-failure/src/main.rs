//! Accesses the device window with an instruction KVM's emulator cannot
//! emulate, so KVM_RUN ends with KVM_EXIT_INTERNAL_ERROR.
#![no_std]
#![no_main]

use core::arch::asm;
use guest_rt::abi::{DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE, PAGE_SIZE};
use guest_rt::{boot, println, BootInfo};

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    // The last page of the window: MMIO, and no device claims it.
    let target = DEVICE_WINDOW_BASE + DEVICE_WINDOW_SIZE - PAGE_SIZE;
    let which = boot::argv(boot).get(1).unwrap_or(b"fld");
    println!(
        "emulation-failure: {} at {target:#x}",
        core::str::from_utf8(which).unwrap_or("?")
    );
    // SAFETY: each candidate only reads or writes the device window page
    // at `target` (mapped, MMIO, not RAM) and clobbers only what it names.
    unsafe {
        match which {
            b"fld" => asm!("fld qword ptr [{0}]", "fstp st(0)", in(reg) target),
            b"paddd" => asm!("paddd xmm0, [{0}]", in(reg) target, out("xmm0") _),
            b"movdqa" => asm!("movdqa xmm0, [{0}]", in(reg) target, out("xmm0") _),
            b"vmovdqu" => asm!("vmovdqu ymm0, [{0}]", in(reg) target, out("ymm0") _),
            b"vmovdqu64" => asm!("vmovdqu64 zmm0, [{0}]", in(reg) target, out("zmm0") _),
            b"fxsave" => asm!("fxsave [{0}]", in(reg) target),
            b"xsave" => {
                asm!("xor eax, eax", "xor edx, edx", "xsave [{0}]", in(reg) target, out("eax") _, out("edx") _)
            }
            b"cmpxchg16b" => {
                asm!("xchg {1}, rbx", "lock cmpxchg16b [{0}]", "xchg {1}, rbx", in(reg) target,
                                  inout(reg) 0u64 => _, inout("rax") 0u64 => _, inout("rdx") 0u64 => _, in("rcx") 0u64)
            }
            b"movdir64b" => asm!("movdir64b {0}, [{1}]", in(reg) target, in(reg) target),
            b"crc32" => asm!("crc32 {0:e}, dword ptr [{1}]", inout(reg) 0u32 => _, in(reg) target),
            _ => println!("emulation-failure: unknown candidate"),
        }
    }
    println!("emulation-failure: the access was emulated; still running");
    1
}

guest_rt::entry!(main);
