//! The vm process's control thread: starts the vCPU threads, waits for the
//! first terminal report or the deadline, reports it and ends the process.

use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_ioctls::VmFd;
use vmm_sys_util::signal::{Killable, SIGRTMIN};

use super::boot::BootedVm;
use super::vcpu::{Report, Shared};
use crate::config::VmConfig;
use crate::control::{self, FromVm};
use crate::events::{VcpuPc, VmEvent};

/// How long stopped vCPUs get to report where they were.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// How often a kick is repeated (see the kick protocol in `vcpu`).
const KICK_EVERY: Duration = Duration::from_millis(5);

/// Runs the guest to its end; never returns.
pub fn run(vm: BootedVm, config: &VmConfig, events: &mut UnixStream) -> ! {
    let BootedVm { vcpus, shared, _vm } = vm;
    let shared = Arc::new(shared);
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(vcpus.len());
    for vcpu in vcpus {
        let (shared, tx) = (Arc::clone(&shared), tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("vcpu{}", vcpu.index))
            .spawn(move || vcpu.run(&shared, tx));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                log::error!("cannot start a vCPU thread: {e}");
                std::process::exit(1);
            }
        }
    }
    send(
        events,
        VmEvent::Started {
            vcpus: config.vcpus,
        },
    );
    let deadline = config
        .timeout_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let terminal = wait_for_end(&rx, deadline, &threads, &shared);
    shared.console.flush();
    let counts = shared.unclaimed.counts();
    if counts.total() > 0 {
        send(events, VmEvent::Unclaimed(counts));
    }
    send(events, terminal);
    teardown(threads, &rx, shared, _vm)
}

/// Stops the remaining vCPUs and destroys the VM before exiting. Left to
/// process exit, KVM's teardown of a live VM sometimes took 4-20 ms longer
/// (multiples of the 4 ms tick, measured with bench/run.sh's cold start);
/// done here in order, it takes ~0.5 ms every time.
fn teardown(
    threads: Vec<JoinHandle<()>>,
    rx: &Receiver<Report>,
    shared: Arc<Shared>,
    vm: VmFd,
) -> ! {
    let (_, all_stopped) = stop_vcpus(rx, &threads, &shared);
    if all_stopped {
        for t in threads {
            let _ = t.join();
        }
        drop(vm);
        drop(shared);
    }
    std::process::exit(0)
}

fn send(events: &mut UnixStream, event: VmEvent) {
    if let Err(e) = control::send(events, &FromVm::Event(event)) {
        log::error!("cannot report to the supervisor: {e}");
        std::process::exit(1);
    }
}

fn wait_for_end(
    rx: &Receiver<Report>,
    deadline: Option<Instant>,
    threads: &[JoinHandle<()>],
    shared: &Shared,
) -> VmEvent {
    loop {
        let report = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
        };
        match report {
            Ok(Report::Exit { status }) => return VmEvent::GuestExit { status },
            Ok(Report::ConsoleBudget { limit }) => return VmEvent::ConsoleBudget { limit },
            Ok(Report::Fault(fault)) => return VmEvent::VcpuFault(fault),
            Ok(Report::Stopped { .. }) => {}
            Err(RecvTimeoutError::Timeout) => {
                let (pcs, _) = stop_vcpus(rx, threads, shared);
                return VmEvent::Timeout { pcs };
            }
            Err(RecvTimeoutError::Disconnected) => {
                log::error!("every vCPU thread ended without a report");
                std::process::exit(1);
            }
        }
    }
}

/// Kicks every running vCPU until its thread has ended or `STOP_GRACE`
/// passes. Returns where each kicked vCPU was, and whether all stopped.
fn stop_vcpus(
    rx: &Receiver<Report>,
    threads: &[JoinHandle<()>],
    shared: &Shared,
) -> (Vec<VcpuPc>, bool) {
    shared.stop.store(true, Ordering::Release);
    let give_up = Instant::now() + STOP_GRACE;
    let mut pcs = Vec::new();
    loop {
        let running: Vec<&JoinHandle<()>> = threads.iter().filter(|t| !t.is_finished()).collect();
        if running.is_empty() || Instant::now() >= give_up {
            pcs.sort_by_key(|p: &VcpuPc| p.vcpu);
            return (pcs, running.is_empty());
        }
        for t in running {
            t.thread().unpark();
            let _ = t.kill(SIGRTMIN());
        }
        while let Ok(report) = rx.recv_timeout(KICK_EVERY) {
            if let Report::Stopped { vcpu, pc: Some(pc) } = report {
                pcs.push(VcpuPc { vcpu, pc });
            }
        }
    }
}
