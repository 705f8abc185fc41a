;; The README's example: prints a greeting and its arguments with WASI's
;; fd_write, then exits with status 0. Built into hello.wasm (the test
;; tests/wasm.rs checks the two agree).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The iovec for the greeting at 0: pointer 16, length 36.
  (data (i32.const 0) "\10\00\00\00\24\00\00\00")
  (data (i32.const 16) "Hello from WebAssembly in a cordon!\0a")
  (func (export "_start")
    (drop (call $fd_write
      (i32.const 1)    ;; stdout
      (i32.const 0)    ;; the iovec
      (i32.const 1)    ;; one of them
      (i32.const 8)))) ;; where the count goes
)
