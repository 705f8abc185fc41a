//! One virtio-console device (no MULTIPORT) as a vhost-user backend.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::Weak;

use log::warn;
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic};
use vmm_sys_util::epoll::EventSet;

use super::stream::{receive, transmit, Inbox, Output};
use crate::serve::queue::{guest_warn, needs_notification, run_queue, signal, Mem};
use crate::serve::{stop_worker, Device, Worker};

/// Queue indices, which are also their event ids.
const RECEIVEQ: u16 = 0;
const TRANSMITQ: u16 = 1;
const NUM_QUEUES: usize = 2;
/// The input fd's event id (ids up to `NUM_QUEUES` are the daemon's).
const INPUT_EVENT: u16 = NUM_QUEUES as u16 + 1;

/// `struct virtio_console_config`: cols, rows (u16), max_nr_ports,
/// emerg_wr (u32). All zero: no size, no ports, no emergency write.
pub const CONFIG_SPACE: [u8; 12] = [0; 12];

/// One connection's console device: writes the transmitq to `output`,
/// fills the receiveq from `input`.
pub struct ConsoleBackend {
    output: Output<BlockingWriter>,
    inbox: Option<Inbox<File>>,
    /// The input fd is registered with the ring worker's epoll.
    watching: bool,
    mem: Option<GuestMemoryAtomic<Mem>>,
    workers: Vec<Weak<Worker<Self>>>,
}

impl ConsoleBackend {
    pub fn new(output: File, input: Option<File>) -> Self {
        ConsoleBackend {
            output: Output::new(BlockingWriter(output)),
            inbox: input.map(Inbox::new),
            watching: false,
            mem: None,
            workers: Vec::new(),
        }
    }

    fn transmit(&mut self, vring: &VringRwLock) {
        let output = &mut self.output;
        run_queue(
            "console: transmitq",
            self.mem.as_ref(),
            vring,
            |queue, mem| transmit(queue, mem, output),
        );
    }

    fn receive(&mut self, vring: &VringRwLock) {
        let Some(mem) = self.mem.as_ref().map(GuestAddressSpace::memory) else {
            return;
        };
        loop {
            let Some(inbox) = self.inbox.as_mut() else {
                return;
            };
            let mut state = vring.get_mut();
            let wants_input = if !state.get_queue().ready() || !state.is_enabled() {
                false
            } else {
                let queue = state.get_queue_mut();
                match receive(queue, &mem, inbox) {
                    Ok(received) => {
                        if received.used && needs_notification(queue, &mem).unwrap_or(true) {
                            signal(&state);
                        }
                        received.wants_input
                    }
                    Err(e) => {
                        guest_warn(format_args!("console: receiveq: {e}"));
                        signal(&state);
                        false
                    }
                }
            };
            drop(state);
            if !self.watch(wants_input) {
                return;
            }
        }
    }

    /// Starts or stops watching the input fd. Returns true if the fd cannot
    /// be polled (regular file, /dev/null): it is then always readable and
    /// the receiveq must be processed again.
    fn watch(&mut self, want: bool) -> bool {
        let Some(inbox) = self.inbox.as_mut() else {
            return false;
        };
        if want == self.watching || inbox.always_readable {
            return false;
        }
        let Some(worker) = self.workers.first().and_then(Weak::upgrade) else {
            return false;
        };
        let fd = inbox.source().as_raw_fd();
        let id = u64::from(INPUT_EVENT);
        if !want {
            if let Err(e) = worker.unregister_listener(fd, EventSet::IN, id) {
                warn!("console: cannot stop watching the input: {e}");
            }
            self.watching = false;
            return false;
        }
        match worker.register_listener(fd, EventSet::IN, id) {
            Ok(()) => self.watching = true,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                inbox.always_readable = true;
                inbox.readable = true;
                return true;
            }
            Err(e) => {
                warn!("console: cannot watch the input, no input for the guest: {e}");
                inbox.eof = true;
            }
        }
        false
    }
}

impl Device for ConsoleBackend {
    fn connected(&mut self, workers: Vec<Weak<Worker<Self>>>) {
        self.workers = workers;
    }
}

impl VhostUserBackendMut for ConsoleBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        crate::serve::MAX_QUEUE_SIZE
    }

    /// The common features (`stream::receive` honours EVENT_IDX too). No
    /// device bits: no SIZE, MULTIPORT or EMERG_WRITE.
    fn features(&self) -> u64 {
        crate::serve::COMMON_FEATURES
    }

    /// CONFIG, for GET_CONFIG.
    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::CONFIG
    }

    fn set_event_idx(&mut self, _enabled: bool) {}

    /// The requested bytes of [`CONFIG_SPACE`]; nothing (an error reply) if
    /// the range does not lie inside it.
    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        crate::serve::read_config(&CONFIG_SPACE, offset, size)
    }

    /// Every field is read-only without EMERG_WRITE: writes are dropped.
    fn set_config(&mut self, offset: u32, buf: &[u8]) -> io::Result<()> {
        let len = buf.len();
        guest_warn(format_args!(
            "console: config write ignored ({len} bytes at {offset})"
        ));
        Ok(())
    }

    fn update_memory(&mut self, mem: GuestMemoryAtomic<Mem>) -> io::Result<()> {
        self.mem = Some(mem);
        Ok(())
    }

    fn stop_vring(&mut self, queue_index: u32) -> io::Result<()> {
        if queue_index == u32::from(RECEIVEQ) {
            self.watch(false);
        }
        Ok(())
    }

    fn handle_event(
        &mut self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        let vring = |index: u16| vrings.get(usize::from(index));
        match (device_event, vring(RECEIVEQ), vring(TRANSMITQ)) {
            (RECEIVEQ, Some(rx), _) => self.receive(rx),
            (TRANSMITQ, _, Some(tx)) => self.transmit(tx),
            (INPUT_EVENT, Some(rx), _) => {
                if let Some(inbox) = self.inbox.as_mut() {
                    inbox.readable = true;
                }
                self.receive(rx);
            }
            _ => return Err(stop_worker(device_event)),
        }
        Ok(())
    }
}

/// Blocking writes to an fd that may have O_NONBLOCK set by someone else
/// (it is shared with the host side, so the flag is not ours to clear): on
/// EAGAIN, wait with poll(2).
pub struct BlockingWriter(pub File);

impl Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(&self.0)?,
                result => return result,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn wait_writable(file: &File) -> io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `pollfd` is a valid, exclusively borrowed pollfd for the
    // duration of the call, and the count passed is one.
    let ret = unsafe { libc::poll(&mut pollfd, 1, -1) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
