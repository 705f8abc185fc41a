//! The console backend on real sockets, driven by the `vhost` crate's
//! frontend: config space (also out of range, by hand), output to pipes,
//! input from a pipe (polled) and from a file (not pollable), two devices
//! in one backend.

#[allow(dead_code)]
mod frontend;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::thread;
use std::time::Duration;

use devices::console::{self, ConsoleConfig, ConsolePort};
use devices::Mode;
use frontend::*;
use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserProtocolFeatures};
use vhost::vhost_user::{Listener, VhostUserFrontend};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::tempfile::TempFile;

#[test]
fn console_config_output_and_input() {
    let path = socket_path("console");
    let (out_reader, out_writer) = std::io::pipe().unwrap();
    let (in_reader, mut in_writer) = std::io::pipe().unwrap();
    let config = ConsoleConfig {
        ports: vec![ConsolePort {
            listener: Listener::new(&path, true).unwrap(),
            output: OwnedFd::from(out_writer),
            input: Some(OwnedFd::from(in_reader)),
        }],
        mode: Mode::Spawned,
    };
    let backend = thread::spawn(move || console::start_backend(config));
    let (mut fe, _, protocol, mut raw) = negotiate_raw(&path, 2);
    let offered = VhostUserProtocolFeatures::CONFIG | VhostUserProtocolFeatures::REPLY_ACK;
    assert_eq!(protocol, offered);
    let flags = VhostUserConfigFlags::empty();
    let (_, config) = fe.get_config(0, 12, flags, &[0; 12]).unwrap();
    assert_eq!(config, vec![0; 12]);
    let (_, config) = fe.get_config(4, 4, flags, &[0; 4]).unwrap();
    assert_eq!(config, vec![0; 4]);
    // Out of range: the spec's error reply, a zero-size payload. (The
    // vhost crate's frontend waits for the payload it asked for instead, so
    // this one is asked on the raw socket.)
    assert_eq!(raw_get_config(&mut raw, 10, 4), 0);
    assert_eq!(raw_get_config(&mut raw, 0x100, 4), 0);
    assert_eq!(raw_get_config(&mut raw, 8, 4), 4);

    let (mem, _backing) = guest_memory();
    set_mem_table(&mut fe, &mem);
    let (mut rx, mut tx) = (Ring::new(0), Ring::new(1));
    rx.set_up(&mut fe, &mem);
    tx.set_up(&mut fe, &mem);

    mem.write_slice(b"hello\n", GuestAddress(BUFFERS)).unwrap();
    tx.post(&mem, &[(BUFFERS, 3, false), (BUFFERS + 3, 3, false)]);
    assert_eq!(tx.wait_used(&mem), (0, 0));
    assert_eq!(read_within(out_reader, 6), b"hello\n");

    // Input before any receive buffer waits; a buffer then takes it.
    in_writer.write_all(b"typed").unwrap();
    thread::sleep(Duration::from_millis(50));
    rx.post(&mem, &[(BUFFERS + 0x1000, 64, true)]);
    assert_eq!(rx.wait_used(&mem), (0, 5));
    // A buffer posted first gets input as it comes.
    rx.post(&mem, &[(BUFFERS + 0x2000, 64, true)]);
    thread::sleep(Duration::from_millis(50));
    in_writer.write_all(b"later").unwrap();
    assert_eq!(rx.wait_used(&mem), (1, 5));
    let mut got = [0u8; 5];
    mem.read_slice(&mut got, GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    assert_eq!(&got, b"typed");
    mem.read_slice(&mut got, GuestAddress(BUFFERS + 0x2000))
        .unwrap();
    assert_eq!(&got, b"later");

    // Both ends of the connection gone: the spawned backend returns.
    drop((fe, raw));
    join_within(backend).unwrap();
}

#[test]
fn console_pair_with_file_input_and_an_output_only_port() {
    let (stdout_r, stdout_w) = std::io::pipe().unwrap();
    let (stderr_r, stderr_w) = std::io::pipe().unwrap();
    // A regular file cannot be polled: it is read whenever buffers wait.
    let input = TempFile::new_with_prefix("/tmp/cordon-stdin-").unwrap();
    input.as_file().write_all(b"from a file").unwrap();
    let input = std::fs::File::open(input.as_path()).unwrap();
    let paths = [socket_path("console0"), socket_path("console1")];
    let config = ConsoleConfig {
        ports: vec![
            ConsolePort {
                listener: Listener::new(&paths[0], true).unwrap(),
                output: OwnedFd::from(stdout_w),
                input: Some(OwnedFd::from(input)),
            },
            ConsolePort {
                listener: Listener::new(&paths[1], true).unwrap(),
                output: OwnedFd::from(stderr_w),
                input: None,
            },
        ],
        mode: Mode::Spawned,
    };
    let backend = thread::spawn(move || console::start_backend(config));
    let (mem, _backing) = guest_memory();
    let mut frontends = Vec::new();
    let mut rings = Vec::new();
    for path in &paths {
        let (mut fe, _, _) = negotiate(path, 2);
        set_mem_table(&mut fe, &mem);
        let pair = [Ring::new(2 * rings.len()), Ring::new(2 * rings.len() + 1)];
        for (index, ring) in pair.iter().enumerate() {
            ring.set_up_as(&mut fe, &mem, index);
        }
        frontends.push(fe);
        rings.push(pair);
    }
    let [[rx0, tx0], [rx1, tx1]] = &mut rings[..] else {
        unreachable!()
    };

    mem.write_slice(b"out", GuestAddress(BUFFERS)).unwrap();
    mem.write_slice(b"err", GuestAddress(BUFFERS + 0x100))
        .unwrap();
    tx1.post(&mem, &[(BUFFERS + 0x100, 3, false)]);
    tx0.post(&mem, &[(BUFFERS, 3, false)]);
    assert_eq!(read_within(stderr_r, 3), b"err");
    assert_eq!(read_within(stdout_r, 3), b"out");
    assert_eq!((tx0.wait_used(&mem), tx1.wait_used(&mem)), ((0, 0), (0, 0)));

    rx0.post(&mem, &[(BUFFERS + 0x1000, 4, true)]);
    rx0.post(&mem, &[(BUFFERS + 0x2000, 64, true)]);
    assert_eq!((rx0.wait_used(&mem), rx0.wait_used(&mem)), ((0, 4), (1, 7)));
    let mut got = [0u8; 11];
    mem.read_slice(&mut got[..4], GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    mem.read_slice(&mut got[4..], GuestAddress(BUFFERS + 0x2000))
        .unwrap();
    assert_eq!(&got, b"from a file");
    // The output-only port never fills its receive buffers.
    rx1.post(&mem, &[(BUFFERS + 0x3000, 64, true)]);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        mem.read_obj::<u16>(GuestAddress(rx1.used() + 2)).unwrap(),
        0
    );

    drop(frontends);
    join_within(backend).unwrap();
}
