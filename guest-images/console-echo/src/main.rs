//! Echoes console 0's input (cordon's stdin) to console 0's output
//! (cordon's stdout), line by line, until a line `quit` (which is not
//! echoed; a trailing CR is ignored) or the end of input. Writes
//! `console-echo: started` to console 1 (stderr) first and `console-echo:
//! quit after N lines` (or `end of input`) there at the end, then exits 0. Exits 3 without a console, 1 if a device fails.
//! A line longer than 4 KiB is echoed in pieces.
#![no_std]
#![no_main]

use guest_rt::{println, BootInfo};
use guest_virtio::{id, Console, VirtioError};

const LINE_MAX: usize = 4096;
/// Bytes of output collected for one write (at least `LINE_MAX`).
const BATCH: usize = 16384;
const NO_DEVICE: u32 = 3;

fn main(boot: &'static BootInfo, _vcpu: u64) -> u32 {
    let devices = guest_virtio::init(boot);
    let (Some(out), Some(err)) = (devices.find(id::CONSOLE, 0), devices.find(id::CONSOLE, 1))
    else {
        println!("console-echo: needs two virtio consoles (cordon run --console)");
        return NO_DEVICE;
    };
    match run(&out, &err) {
        Ok(()) => 0,
        Err(e) => {
            println!("console-echo: FAIL {e}");
            1
        }
    }
}

fn run(out: &guest_virtio::Device, err: &guest_virtio::Device) -> Result<(), VirtioError> {
    let mut out = Console::new(out)?;
    let mut err = Console::new(err)?;
    err.write(b"console-echo: started\n")?;
    let mut line = [0u8; LINE_MAX];
    let mut len = 0;
    let mut lines = 0u64;
    let mut input = [0u8; 1024];
    // Whole lines of one read go out in one write.
    let mut echo = Batch {
        buf: [0; BATCH],
        len: 0,
    };
    loop {
        let n = out.read(&mut input)?;
        if n == 0 {
            // The input ended without `quit`.
            echo.flush(&mut out)?;
            return err.write(b"console-echo: end of input\n");
        }
        for &byte in &input[..n] {
            line[len] = byte;
            len += 1;
            if byte == b'\n' {
                if is_quit(&line[..len]) {
                    echo.flush(&mut out)?;
                    let mut report = Batch {
                        buf: [0; BATCH],
                        len: 0,
                    };
                    let _ = core::fmt::write(
                        &mut report,
                        format_args!("console-echo: quit after {lines} lines\n"),
                    );
                    return report.flush(&mut err);
                }
                echo.push(&mut out, &line[..len])?;
                lines += 1;
                len = 0;
            } else if len == LINE_MAX {
                echo.push(&mut out, &line)?;
                len = 0;
            }
        }
        echo.flush(&mut out)?;
    }
}

/// Whether `line` (with its newline) is `quit`, with or without a CR.
fn is_quit(line: &[u8]) -> bool {
    matches!(line, b"quit\n" | b"quit\r\n")
}

/// Output collected before one console write.
struct Batch {
    buf: [u8; BATCH],
    len: usize,
}

impl Batch {
    /// Appends `bytes`, writing out first what is collected if they do not
    /// fit.
    fn push(&mut self, console: &mut Console, bytes: &[u8]) -> Result<(), VirtioError> {
        if self.len + bytes.len() > BATCH {
            self.flush(console)?;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    fn flush(&mut self, console: &mut Console) -> Result<(), VirtioError> {
        if self.len > 0 {
            console.write(&self.buf[..self.len])?;
            self.len = 0;
        }
        Ok(())
    }
}

impl core::fmt::Write for Batch {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

guest_rt::entry!(main);
