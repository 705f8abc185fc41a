//! The debug console: bytes written to `PORT_CONSOLE` reach cordon's stdout.

use crate::port::outsb;
use core::fmt;
use guest_abi::{PAGE_SIZE, PORT_CONSOLE};

/// Writes `bytes` to the console, one `rep outsb` (one exit) for each piece
/// that lies within a 4 KiB page.
pub fn write(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let page_left = PAGE_SIZE as usize - (bytes.as_ptr() as usize % PAGE_SIZE as usize);
        let (chunk, rest) = bytes.split_at(page_left.min(bytes.len()));
        outsb(PORT_CONSOLE, chunk);
        bytes = rest;
    }
}

/// Size of the buffer behind one `print!`: longer output takes more exits.
const LINE_BUFFER: usize = 256;

/// Collects formatted output so one `print!` costs one exit, not one per
/// formatted piece.
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
