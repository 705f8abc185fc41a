//! The rng backend on a real socket, driven by the `vhost` crate's
//! frontend: negotiation, a ring in shared guest memory, reconnects
//! (standalone) and the end of the one connection (spawned).

#[allow(dead_code)]
mod frontend;

use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;

use devices::rng::{self, RngConfig, MAX_REQUEST};
use devices::Mode;
use frontend::*;
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::Listener;
use vm_memory::{Bytes, GuestAddress};

#[test]
fn rng_serves_one_frontend_after_another() {
    let path = socket_path("rng");
    let config = RngConfig {
        listener: Listener::new(&path, true).unwrap(),
        mode: Mode::Standalone,
    };
    thread::spawn(move || rng::start_backend(config));
    for _ in 0..2 {
        let (mut fe, _, protocol) = negotiate(&path, 1);
        // REPLY_ACK comes from the vhost crate, for every backend.
        assert_eq!(protocol, VhostUserProtocolFeatures::REPLY_ACK);
        let (mem, _backing) = guest_memory();
        set_mem_table(&mut fe, &mem);
        let mut ring = Ring::new(0);
        ring.set_up(&mut fe, &mem);

        ring.post(
            &mem,
            &[(BUFFERS, 4096, true), (BUFFERS + 0x1000, 4096, true)],
        );
        assert_eq!(ring.wait_used(&mem), (0, 8192));
        let mut data = vec![0u8; 8192];
        mem.read_slice(&mut data, GuestAddress(BUFFERS)).unwrap();
        assert!(data.chunks(32).all(|c| c.iter().any(|&b| b != 0)));

        // A read-only buffer gets nothing; a huge one gets 64 KiB.
        ring.post(&mem, &[(BUFFERS, 16, false)]);
        assert_eq!(ring.wait_used(&mem), (2, 0));
        ring.post(&mem, &[(BUFFERS, 0x4_0000, true)]);
        assert_eq!(ring.wait_used(&mem), (3, MAX_REQUEST as u32));
        // Dropping the frontend disconnects; the next one starts afresh.
    }
}

/// What the supervisor does: bind, queue the vm process's connection,
/// unlink, hand the listening fd over (here with O_NONBLOCK, which `serve`
/// must undo); the backend serves that one connection and returns.
#[test]
fn rng_spawned_serves_the_queued_connection_and_returns() {
    let path = socket_path("rng-spawned");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let stream = UnixStream::connect(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let config = RngConfig {
        listener: Listener::from(listener),
        mode: Mode::Spawned,
    };
    let backend = thread::spawn(move || rng::start_backend(config));
    let (mut fe, _, _, raw) = negotiate_on(stream, 1);
    let (mem, _backing) = guest_memory();
    set_mem_table(&mut fe, &mem);
    let mut ring = Ring::new(0);
    ring.set_up(&mut fe, &mem);
    ring.post(&mem, &[(BUFFERS, 64, true)]);
    assert_eq!(ring.wait_used(&mem), (0, 64));
    drop((fe, raw));
    join_within(backend).unwrap();
}
