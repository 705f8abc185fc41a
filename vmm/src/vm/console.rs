//! The debug console (port 0xE9): guest bytes to cordon's stdout, within a
//! budget. Each vCPU's bytes are kept apart until a newline (or 4 KiB), so
//! lines of concurrent vCPUs do not interleave byte by byte (on kvm_pvm even
//! `rep outsb` exits once per byte). Output is flushed at each newline and
//! when the sandbox ends.

use std::io::Write;
use std::sync::Mutex;

const FLUSH_AT: usize = 4096;

/// The console was written past its budget.
#[derive(Debug, PartialEq, Eq)]
pub struct BudgetExceeded {
    pub limit: u64,
}

pub struct Console<W: Write + Send> {
    budget: u64,
    inner: Mutex<Inner<W>>,
}

struct Inner<W> {
    out: W,
    /// Each vCPU's bytes since its last newline.
    lines: Vec<Vec<u8>>,
    written: u64,
}

impl<W: Write + Send> Console<W> {
    pub fn new(out: W, budget: u64, vcpus: usize) -> Self {
        let inner = Inner {
            out,
            lines: vec![Vec::new(); vcpus],
            written: 0,
        };
        Console {
            budget,
            inner: Mutex::new(inner),
        }
    }

    /// Takes guest bytes from `vcpu`. Past the budget, what fits is written
    /// and the rest dropped.
    pub fn write(&self, vcpu: usize, bytes: &[u8]) -> Result<(), BudgetExceeded> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.budget.saturating_sub(c.written);
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        c.written += take as u64;
        let Some(line) = c.lines.get_mut(vcpu) else {
            return Ok(());
        };
        line.extend_from_slice(&bytes[..take]);
        if take < bytes.len() {
            c.flush();
            return Err(BudgetExceeded { limit: self.budget });
        }
        if bytes.contains(&b'\n') || line.len() >= FLUSH_AT {
            let line = std::mem::take(line);
            c.emit(&line);
        }
        Ok(())
    }

    pub fn flush(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

impl<W: Write> Inner<W> {
    fn emit(&mut self, bytes: &[u8]) {
        // A closed or failing stdout must not stop the guest's other work;
        // the bytes are dropped, like a serial line with nobody listening.
        let _ = self.out.write_all(bytes);
        let _ = self.out.flush();
    }

    /// Writes every vCPU's pending bytes.
    fn flush(&mut self) {
        for i in 0..self.lines.len() {
            let line = std::mem::take(&mut self.lines[i]);
            self.emit(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn buffers_until_newline() {
        let sink = Sink::default();
        let console = Console::new(sink.clone(), 100, 2);
        console.write(0, b"ab").unwrap();
        console.write(1, b"xy\n").unwrap();
        assert_eq!(&*sink.0.lock().unwrap(), b"xy\n");
        console.write(0, b"\n").unwrap();
        assert_eq!(&*sink.0.lock().unwrap(), b"xy\nab\n");
    }

    #[test]
    fn stops_at_the_budget_keeping_what_fits() {
        let sink = Sink::default();
        let console = Console::new(sink.clone(), 4, 1);
        console.write(0, b"abc").unwrap();
        assert_eq!(console.write(0, b"def"), Err(BudgetExceeded { limit: 4 }));
        assert_eq!(&*sink.0.lock().unwrap(), b"abcd");
    }
}
