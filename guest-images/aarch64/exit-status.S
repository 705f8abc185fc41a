// An arm64 guest (docs/guest-abi.md, "arm64") that prints a line on the
// debug console and ends the sandbox with status 7 through the exit
// register. Built like aarch32-escape.S.
    .include "console.inc"
    .global _start
    .text
_start:
    print   message
    mov     w5, #7
    str     w5, [x1, #0x10]         // the exit register: status 7
    b       .
message:
    .asciz  "exit-status: ending with 7\n"
