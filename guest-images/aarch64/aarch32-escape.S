// An arm64 guest (Guest ABI for arm64, docs/guest-abi.md) that takes the
// seed's path: it prints "aarch32-escape: boot N" on the debug console (N
// is the boot info's boot counter, its last digit), then ERETs from EL1 to
// AArch32 User mode (SPSR_EL1 = 0x10). A host that does not run AArch32
// EL0 for guests refuses that: KVM invalidates the vCPU, and cordon's
// restart policy decides (tests/l1_arm64.rs). Built with clang and lld:
//
//   clang --target=aarch64-linux-gnu -nostdlib -static -fuse-ld=lld \
//       -I. -Wl,-T,link.ld -o aarch32-escape aarch32-escape.S
    .include "console.inc"
    .global _start
    .text
_start:
    // x0: the boot info; its boot counter is at 0x10.
    ldr     x2, [x0, #0x10]
    print   message                 // x1: the debug console register
    mov     x5, #10
    udiv    x6, x2, x5
    msub    x7, x6, x5, x2          // boot counter mod 10
    add     w7, w7, #'0'
    strb    w7, [x1]
    mov     w4, #'\n'
    strb    w4, [x1]
    mov     x0, #0x10               // AArch32, User mode
    msr     spsr_el1, x0
    adr     x1, aarch32
    msr     elr_el1, x1
    eret
aarch32:
    .inst   0xeafffffe              // A32 "b ." (never runs: KVM refuses)
message:
    .asciz  "aarch32-escape: boot "
