//! A standalone backend serves frontend after frontend without growing:
//! each connection's daemon, ring worker, memory mapping and fds go away
//! with it. Its own test binary, so no other test's fds and threads count.

#[allow(dead_code)]
mod frontend;

use std::thread;
use std::time::{Duration, Instant};

use devices::rng::{self, RngConfig};
use devices::Mode;
use frontend::*;
use vhost::vhost_user::Listener;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// (open fds, threads) once they stop changing.
fn settled() -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = (count("/proc/self/fd"), count("/proc/self/task"));
    loop {
        thread::sleep(Duration::from_millis(50));
        let now = (count("/proc/self/fd"), count("/proc/self/task"));
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[test]
fn reconnects_leak_no_fds_and_no_threads() {
    let path = socket_path("rng-reconnect");
    let config = RngConfig {
        listener: Listener::new(&path, true).unwrap(),
        mode: Mode::Standalone,
    };
    thread::spawn(move || rng::start_backend(config));
    let connect = || {
        let (mut fe, _, _) = negotiate(&path, 1);
        let (mem, _backing) = guest_memory();
        set_mem_table(&mut fe, &mem);
        let mut ring = Ring::new(0);
        ring.set_up(&mut fe, &mem);
        ring.post(&mem, &[(BUFFERS, 16, true)]);
        assert_eq!(ring.wait_used(&mem), (0, 16));
    };
    connect();
    let before = settled();
    for _ in 0..20 {
        connect();
    }
    assert_eq!(settled(), before, "(fds, threads) after 20 more frontends");
}
