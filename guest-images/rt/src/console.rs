//! The debug console: bytes written to `PORT_CONSOLE` reach cordon's stdout.

use crate::port::outsb;
use core::fmt;
use guest_abi::PORT_CONSOLE;

/// Writes `bytes` to the console with `rep outsb`. Each byte is still one
/// exit to the VMM (see [`outsb`]): this console is for diagnostics; bulk
/// output belongs on a virtqueue.
pub fn write(bytes: &[u8]) {
    outsb(PORT_CONSOLE, bytes);
}

/// Size of the buffer behind one `print!`: longer output is written in
/// pieces of this size.
const LINE_BUFFER: usize = 256;

/// Collects formatted output so one `print!` is one `rep outsb`, not one
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
