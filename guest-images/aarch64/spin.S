// An arm64 guest (docs/guest-abi.md, "arm64") that prints a line on the
// debug console and then spins without an exit: only cordon's --timeout
// ends it. Built like aarch32-escape.S.
    .include "console.inc"
    .global _start
    .text
_start:
    print   message
spin:
    b       spin
message:
    .asciz  "spin: looping forever\n"
