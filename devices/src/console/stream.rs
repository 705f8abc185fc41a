//! The console's two queues as byte streams: the transmitq drains into a
//! host writer, the receiveq fills from a host reader. No epoll, no fds:
//! the backend decides when to call these, and unit tests drive them on
//! mock queues.

use std::io::{self, Read, Write};

use virtio_queue::{Queue, Reader, Writer};

use crate::serve::queue::{self, guest_warn, Chain, Direction, Mem, QueueError};

/// Host input read at once at most: the only input the backend holds.
pub const INPUT_CHUNK: usize = 16 * 1024;

/// Where the guest's output goes. Writes block: a full pipe stalls the
/// transmitq, so the guest waits instead of the backend buffering.
pub struct Output<W> {
    sink: W,
    /// The sink failed (EPIPE...): the rest of the output is dropped.
    broken: bool,
}

impl<W: Write> Output<W> {
    pub fn new(sink: W) -> Self {
        Output {
            sink,
            broken: false,
        }
    }

    #[cfg(test)]
    pub fn sink(&self) -> &W {
        &self.sink
    }

    /// Writes one transmitq chain out; its used length is always 0.
    fn send(&mut self, chain: Chain<'_>, mem: &Mem) {
        if let Err(e) = queue::check_chain(&chain, Direction::FromGuest) {
            guest_warn(format_args!("console: output ignored: {e}"));
            return;
        }
        let mut reader = match Reader::new(mem, chain) {
            Ok(reader) => reader,
            Err(e) => {
                guest_warn(format_args!("console: output ignored: {e}"));
                return;
            }
        };
        if self.broken {
            return;
        }
        if let Err(e) = io::copy(&mut reader, &mut self.sink) {
            log::warn!("console: output failed, dropping the guest's output from now on: {e}");
            self.broken = true;
        }
    }
}

/// Writes every transmitq chain out. Returns whether the driver must be
/// notified.
pub fn transmit<W: Write>(
    queue: &mut Queue,
    mem: &Mem,
    output: &mut Output<W>,
) -> Result<bool, QueueError> {
    queue::drain(queue, mem, |chain| {
        output.send(chain, mem);
        0
    })
}

/// Host input on its way to the guest: at most one read, held only while
/// the guest has no receive buffer for it.
pub struct Inbox<R> {
    source: R,
    buf: Vec<u8>,
    /// How much of `buf` the guest has already received.
    start: usize,
    /// One read would not block: the fd polled readable since the last
    /// read, or it cannot be polled at all (a regular file, /dev/null).
    pub readable: bool,
    /// The fd cannot be polled: every read is allowed.
    pub always_readable: bool,
    /// End of input (or a read error): nothing more is read.
    pub eof: bool,
    /// The end of input was told to the driver: one receive buffer used
    /// with length 0.
    pub eof_sent: bool,
}

impl<R: Read> Inbox<R> {
    pub fn new(source: R) -> Self {
        Inbox {
            source,
            buf: Vec::with_capacity(INPUT_CHUNK),
            start: 0,
            readable: false,
            always_readable: false,
            eof: false,
            eof_sent: false,
        }
    }

    pub fn source(&self) -> &R {
        &self.source
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Reads once, into an empty buffer.
    fn fill(&mut self) {
        self.buf.resize(INPUT_CHUNK, 0);
        self.start = 0;
        let read = self.source.read(&mut self.buf);
        // A polled fd waits for its next readiness event before reading again.
        self.readable = self.always_readable;
        match read {
            Ok(0) => {
                self.buf.clear();
                self.eof = true;
            }
            Ok(n) => self.buf.truncate(n),
            Err(e) => {
                self.buf.clear();
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => self.readable = false,
                    _ => {
                        log::warn!("console: input failed, no more input for the guest: {e}");
                        self.eof = true;
                    }
                }
            }
        }
    }

    /// Copies pending input into one receiveq chain; returns the used
    /// length. A bad chain gets nothing and the input stays pending.
    fn deliver(&mut self, chain: Chain<'_>, mem: &Mem) -> u32 {
        if let Err(e) = queue::check_chain(&chain, Direction::ToGuest) {
            guest_warn(format_args!("console: receive buffer ignored: {e}"));
            return 0;
        }
        let mut writer = match Writer::new(mem, chain) {
            Ok(writer) => writer,
            Err(e) => {
                guest_warn(format_args!("console: receive buffer ignored: {e}"));
                return 0;
            }
        };
        let n = writer.write(self.pending()).unwrap_or(0);
        self.start += n;
        u32::try_from(n).unwrap_or(0)
    }
}

/// What [`receive`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Used chains were added: notify the driver if it wants.
    pub used: bool,
    /// Reading input is useful now (nothing pending, not at its end, a
    /// receive buffer posted): watch the input fd. Otherwise do not, and
    /// the driver's next buffer kicks the receiveq.
    pub wants_input: bool,
}

/// Moves input into the receiveq: pending bytes first; then one read, if
/// the input is readable and a receive buffer is posted. Out of buffers,
/// driver notifications are re-enabled so the next buffer kicks.
pub fn receive<R: Read>(
    queue: &mut Queue,
    mem: &Mem,
    inbox: &mut Inbox<R>,
) -> Result<Received, QueueError> {
    let mut used = false;
    loop {
        if inbox.pending().is_empty() {
            if inbox.eof {
                // End of input, once: a receive buffer used with length 0.
                if !inbox.eof_sent {
                    if let Some(chain) = queue::next_chain(queue, mem)? {
                        queue::add_used(queue, mem, chain.head_index(), 0)?;
                        inbox.eof_sent = true;
                        used = true;
                    }
                }
                break;
            }
            if !queue::has_available(queue, mem)? {
                if queue::enable_notification(queue, mem)? {
                    continue;
                }
                break;
            }
            if !inbox.readable {
                break;
            }
            inbox.fill();
            continue;
        }
        let Some(chain) = queue::next_chain(queue, mem)? else {
            if queue::enable_notification(queue, mem)? {
                continue;
            }
            break;
        };
        let head = chain.head_index();
        let len = inbox.deliver(chain, mem);
        queue::add_used(queue, mem, head, len)?;
        used = true;
    }
    let wants_input = inbox.pending().is_empty() && !inbox.eof && queue::has_available(queue, mem)?;
    Ok(Received { used, wants_input })
}
