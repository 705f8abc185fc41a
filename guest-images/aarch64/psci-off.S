// An arm64 guest (docs/guest-abi.md, "arm64") that prints a line on the
// debug console and powers off with PSCI SYSTEM_OFF, which KVM handles and
// reports as KVM_EXIT_SYSTEM_EVENT: status 0. Built like aarch32-escape.S.
    .include "console.inc"
    .global _start
    .text
_start:
    print   message
    ldr     x0, =0x84000008         // PSCI SYSTEM_OFF
    hvc     #0
    b       .
message:
    .asciz  "psci-off: powering off\n"
