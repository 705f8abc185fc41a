//! The debug console (port 0xE9): guest bytes to cordon's stdout, within a
//! budget. Output is buffered and flushed at each newline, at 4 KiB, and when
//! the sandbox ends, because every port exit costs tens of microseconds and
//! guests write byte by byte.

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
    buf: Vec<u8>,
    written: u64,
}

impl<W: Write + Send> Console<W> {
    pub fn new(out: W, budget: u64) -> Self {
        Console {
            budget,
            inner: Mutex::new(Inner {
                out,
                buf: Vec::with_capacity(FLUSH_AT),
                written: 0,
            }),
        }
    }

    /// Takes guest bytes. Past the budget, what fits is written and the rest
    /// dropped.
    pub fn write(&self, bytes: &[u8]) -> Result<(), BudgetExceeded> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.budget.saturating_sub(c.written);
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        c.buf.extend_from_slice(&bytes[..take]);
        c.written += take as u64;
        if take < bytes.len() {
            c.flush();
            return Err(BudgetExceeded { limit: self.budget });
        }
        if c.buf.len() >= FLUSH_AT || bytes.contains(&b'\n') {
            c.flush();
        }
        Ok(())
    }

    pub fn flush(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

impl<W: Write> Inner<W> {
    fn flush(&mut self) {
        // A closed or failing stdout must not stop the guest's other work;
        // the bytes are dropped, like a serial line with nobody listening.
        let _ = self.out.write_all(&self.buf);
        let _ = self.out.flush();
        self.buf.clear();
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
        let console = Console::new(sink.clone(), 100);
        console.write(b"ab").unwrap();
        assert!(sink.0.lock().unwrap().is_empty());
        console.write(b"\n").unwrap();
        assert_eq!(&*sink.0.lock().unwrap(), b"ab\n");
    }

    #[test]
    fn stops_at_the_budget_keeping_what_fits() {
        let sink = Sink::default();
        let console = Console::new(sink.clone(), 4);
        console.write(b"abc").unwrap();
        assert_eq!(console.write(b"def"), Err(BudgetExceeded { limit: 4 }));
        assert_eq!(&*sink.0.lock().unwrap(), b"abcd");
    }
}
