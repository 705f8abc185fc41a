//! The control socket between a supervisor and a child: length-prefixed JSON
//! frames of typed messages over a unix stream socket.
//!
//! The supervisor reads frames without blocking (`FrameReader`), because a
//! compromised child may send half a frame and stop; the child reads with
//! blocking calls, because its supervisor is trusted.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use jail::seccomp::{Violation, VIOLATION_MAGIC};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::config::VmConfig;
use crate::events::VmEvent;

/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

/// Supervisor -> vm process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToVm {
    Boot(Box<VmConfig>),
    /// After a fault it reported under `reset-vcpu`: load the guest again
    /// with this boot counter and restart the vCPU.
    ResetVcpu {
        boot_counter: u64,
    },
    /// After a fault it reported under `reset-vcpu`: the budget is spent
    /// (or the policy changed its mind); end.
    Stop,
    /// The device process behind `slot` was restarted: its new vhost-user
    /// connection comes with this frame (SCM_RIGHTS, `send_with_fd`);
    /// connect to it and replay the device's state.
    Reconnect {
        slot: usize,
    },
}

/// vm process -> supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromVm {
    Event(VmEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket I/O failed")]
    Io(#[from] io::Error),
    #[error("control message is malformed")]
    Malformed(#[from] serde_json::Error),
    #[error("control frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("control socket closed")]
    Closed,
}

/// One frame: the body's length (u32, little-endian), then the body.
fn frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, ControlError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(ControlError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes one frame.
pub fn send<T: Serialize>(out: &mut impl Write, msg: &T) -> Result<(), ControlError> {
    out.write_all(&frame(msg)?)?;
    Ok(())
}

fn errno(e: vmm_sys_util::errno::Error) -> ControlError {
    ControlError::Io(io::Error::from_raw_os_error(e.errno()))
}

/// Writes one frame with `fd` attached to its first byte (SCM_RIGHTS).
pub fn send_with_fd<T: Serialize>(
    out: &UnixStream,
    msg: &T,
    fd: BorrowedFd<'_>,
) -> Result<(), ControlError> {
    let frame = frame(msg)?;
    let sent = out
        .send_with_fd(&frame[..1], fd.as_raw_fd())
        .map_err(errno)?;
    if sent != 1 {
        return Err(ControlError::Io(io::ErrorKind::WriteZero.into()));
    }
    let mut out = out;
    out.write_all(&frame[1..])?;
    Ok(())
}

/// Reads one frame, blocking, with the fd that came with it (if any): a
/// child's reader for frames from `send` and `send_with_fd` alike.
pub fn recv_with_fd<T: DeserializeOwned>(
    input: &UnixStream,
) -> Result<(T, Option<OwnedFd>), ControlError> {
    let mut first = [0u8; 1];
    let (n, file) = loop {
        match input.recv_with_fd(&mut first) {
            Ok(got) => break got,
            Err(e) if e.errno() == libc::EINTR => continue,
            Err(e) => return Err(errno(e)),
        }
    };
    if n == 0 {
        return Err(ControlError::Closed);
    }
    let mut rest = [0u8; 3];
    let mut input = input;
    input.read_exact(&mut rest)?;
    let len = u32::from_le_bytes([first[0], rest[0], rest[1], rest[2]]) as usize;
    if len > MAX_FRAME {
        return Err(ControlError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok((serde_json::from_slice(&body)?, file.map(OwnedFd::from)))
}

/// Reads one frame, blocking.
pub fn recv<T: DeserializeOwned>(input: &mut impl Read) -> Result<T, ControlError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ControlError::Closed),
        other => other?,
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ControlError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Collects frames from a non-blocking reader.
///
/// A jailed child's SIGSYS reporter writes a seccomp violation record
/// (`jail::seccomp::Violation`, 16 bytes starting "SYSV") on the same
/// socket as its last act; read as a frame length, "SYSV" is far above
/// `MAX_FRAME`, so the two cannot be confused. The reader keeps the record
/// in `violation` and ignores what follows it.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    pub violation: Option<Violation>,
}

impl FrameReader {
    /// Reads what is available; returns the complete messages, in order.
    /// `Closed` once the peer has closed and no partial frame is pending.
    pub fn read_available<T: DeserializeOwned>(
        &mut self,
        input: &mut impl Read,
    ) -> Result<Vec<T>, ControlError> {
        let mut chunk = [0u8; 16 * 1024];
        let mut closed = false;
        loop {
            match input.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A peer that exits with our messages unread resets the
                // connection: it is closed all the same.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    closed = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            if self.buf.len() > MAX_FRAME + 4 {
                break;
            }
        }
        let messages = self.take_frames()?;
        if closed && messages.is_empty() {
            return Err(ControlError::Closed);
        }
        Ok(messages)
    }

    fn take_frames<T: DeserializeOwned>(&mut self) -> Result<Vec<T>, ControlError> {
        let mut messages = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 4 {
            let mut len = [0u8; 4];
            len.copy_from_slice(&self.buf[at..at + 4]);
            let len = u32::from_le_bytes(len) as usize;
            if len > MAX_FRAME {
                let record = self.buf.get(at..at + Violation::SIZE);
                match record.map(|r| r.try_into().ok().and_then(Violation::from_bytes)) {
                    Some(Some(violation)) => {
                        self.violation = Some(violation);
                        self.buf.clear();
                        return Ok(messages);
                    }
                    // Wait for the rest of a record.
                    None if len == VIOLATION_MAGIC as usize => break,
                    _ => return Err(ControlError::TooLarge(len)),
                }
            }
            if self.buf.len() - at - 4 < len {
                break;
            }
            messages.push(serde_json::from_slice(&self.buf[at + 4..at + 4 + len])?);
            at += 4 + len;
        }
        self.buf.drain(..at);
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::VmEvent;
    use std::os::fd::AsFd;

    #[test]
    fn a_frame_carries_its_fd_and_plain_frames_read_the_same_way() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mine, theirs) = UnixStream::pair().unwrap();
        send_with_fd(&a, &ToVm::Reconnect { slot: 3 }, theirs.as_fd()).unwrap();
        send(&mut &a, &ToVm::Stop).unwrap();
        let (msg, fd) = recv_with_fd::<ToVm>(&b).unwrap();
        assert_eq!(msg, ToVm::Reconnect { slot: 3 });
        // The fd that came is a working end of the pair.
        let mut got = UnixStream::from(fd.expect("an fd"));
        got.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        (&mine).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        let (msg, fd) = recv_with_fd::<ToVm>(&b).unwrap();
        assert_eq!((msg, fd.is_none()), (ToVm::Stop, true));
        drop(a);
        assert!(matches!(
            recv_with_fd::<ToVm>(&b),
            Err(ControlError::Closed)
        ));
    }

    /// A non-blocking reader with nothing more to give after its bytes.
    struct Pending<'a>(&'a [u8]);

    impl Read for Pending<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut wire = Vec::new();
        send(&mut wire, &FromVm::Event(VmEvent::Started { vcpus: 2 })).unwrap();
        let exit = VmEvent::GuestExit {
            status: 7,
            reason: None,
        };
        send(&mut wire, &FromVm::Event(exit.clone())).unwrap();
        let mut reader = FrameReader::default();
        let first: Vec<FromVm> = reader.read_available(&mut Pending(&wire[..5])).unwrap();
        assert!(first.is_empty());
        let rest: Vec<FromVm> = reader.read_available(&mut Pending(&wire[5..])).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[1], FromVm::Event(exit));
    }

    #[test]
    fn a_violation_record_after_frames_is_kept() {
        let mut wire = Vec::new();
        send(&mut wire, &FromVm::Event(VmEvent::Started { vcpus: 1 })).unwrap();
        let v = Violation {
            arch: 0xc000_003e,
            syscall: 59,
        };
        wire.extend_from_slice(&v.to_bytes());
        let mut reader = FrameReader::default();
        let split = wire.len() - 10;
        let first: Vec<FromVm> = reader.read_available(&mut Pending(&wire[..split])).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(reader.violation, None);
        let rest: Vec<FromVm> = reader.read_available(&mut Pending(&wire[split..])).unwrap();
        assert!(rest.is_empty());
        assert_eq!(reader.violation, Some(v));
    }

    #[test]
    fn oversized_frame_is_refused() {
        let wire = (u32::MAX).to_le_bytes();
        let mut reader = FrameReader::default();
        let got: Result<Vec<FromVm>, _> = reader.read_available(&mut &wire[..]);
        assert!(matches!(got, Err(ControlError::TooLarge(_))));
        let blocking: Result<FromVm, _> = recv(&mut &wire[..]);
        assert!(matches!(blocking, Err(ControlError::TooLarge(_))));
    }
}
