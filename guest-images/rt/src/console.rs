//! The debug console: bytes written to `PORT_CONSOLE` reach cordon's stdout.

use crate::port::out_buffer;
use core::fmt;
use guest_abi::{CONSOLE_WRITE_MAX, PORT_CONSOLE_WRITE};

/// Writes `bytes` to the console with the ABI's console-write call: one exit
/// per `CONSOLE_WRITE_MAX` bytes. (`rep outsb` to `PORT_CONSOLE` works too,
/// but exits once per byte on kvm_pvm.) This console is for diagnostics;
/// bulk output belongs on a virtqueue.
pub fn write(bytes: &[u8]) {
    for chunk in bytes.chunks(CONSOLE_WRITE_MAX as usize) {
        out_buffer(PORT_CONSOLE_WRITE, chunk);
    }
}

/// Size of the buffer behind one `print!`: longer output is written in
/// pieces of this size.
const LINE_BUFFER: usize = 256;

/// Collects formatted output so one `print!` is one console write, not one
/// per formatted piece.
struct Buffered {
    buf: [u8; LINE_BUFFER],
    len: usize,
}

impl Buffered {
    fn flush(&mut self) {
        write(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for Buffered {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == LINE_BUFFER {
                self.flush();
            }
            let n = (LINE_BUFFER - self.len).min(bytes.len());
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Writes formatted output to the console; used by [`print!`](crate::print).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut out = Buffered {
        buf: [0; LINE_BUFFER],
        len: 0,
    };
    // Writing into `Buffered` never fails; a `Display` impl that fails
    // only cuts its own output short.
    let _ = fmt::Write::write_fmt(&mut out, args);
    out.flush();
}

/// Prints to the debug console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!($($arg)*))
    };
}

/// Prints a line to the debug console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::write(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
