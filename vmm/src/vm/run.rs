//! The vm process's control thread: starts the vCPU threads, waits for the
//! first terminal report or the deadline, stops the other vCPUs, reports
//! the end and tears the VM down.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_ioctls::VmFd;
use vmm_sys_util::signal::{Killable, SIGRTMIN};

use super::boot::BootedVm;
use super::devices::CallFd;
use super::vcpu::{Report, Shared, Vcpu};
use crate::config::VmConfig;
use crate::control::{self, FromVm, ToVm};
use crate::events::{VcpuFault, VcpuPc, VcpuStatus, VmEvent};
use crate::policy::FaultAction;

/// How long kicked vCPUs get to leave their run loops.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// How often a kick is repeated (see the kick protocol in `vcpu`).
const KICK_EVERY: Duration = Duration::from_millis(5);

/// Runs the guest to its end; never returns. Each vCPU thread first adds
/// the vcpu seccomp filter (in `vcpu_seccomp`'s mode) to the process's.
/// Under `--on-vcpu-fault reset-vcpu` a repairable fault of the single
/// vCPU is reported and the supervisor answers: reset (the image is loaded
/// again and the vCPU restarts at its entry) or stop.
pub fn run(
    vm: BootedVm,
    config: &VmConfig,
    events: &mut UnixStream,
    death: OwnedFd,
    vcpu_seccomp: Option<jail::seccomp::Mode>,
) -> ! {
    let BootedVm {
        vcpus,
        shared,
        calls,
        image,
        _vm,
    } = vm;
    let shared = Arc::new(shared);
    let (tx, rx) = mpsc::channel();
    let mut threads: Vec<JoinHandle<Vcpu>> = vcpus
        .into_iter()
        .map(|vcpu| start_vcpu(vcpu, &shared, &tx, vcpu_seccomp))
        .collect();
    send(
        events,
        VmEvent::Started {
            vcpus: config.vcpus,
        },
    );
    let deadline = config
        .timeout_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    // The terminal event, unless it was sent already (a fault the
    // supervisor chose to stop on).
    let end = loop {
        let end = wait_for_end(&rx, deadline, &shared, &death, events, &calls, &threads);
        let Some(VmEvent::VcpuFault(fault)) = end else {
            break Some(end);
        };
        if !resettable(config, &fault) {
            break Some(Some(VmEvent::VcpuFault(fault)));
        }
        send(events, VmEvent::VcpuFault(fault));
        // A device restart may come before the answer.
        let answer = loop {
            if let Some(msg) = read_control(events, &shared) {
                break msg;
            }
        };
        let ToVm::ResetVcpu { boot_counter } = answer else {
            break None;
        };
        // The faulted vCPU has left its loop (it reported), so its thread
        // ends on its own and hands the vCPU back.
        let Some(vcpu) = threads.pop().and_then(|t| t.join().ok()) else {
            log::error!("the faulted vCPU's thread did not hand it back");
            break None;
        };
        if let Err(e) = image.reload(config, &shared, &vcpu.fd, boot_counter) {
            break Some(Some(VmEvent::BootFailed {
                cause: e.cause(),
                message: crate::error_chain(&e),
            }));
        }
        shared.in_run_loop[0].store(true, Ordering::Release);
        threads.push(start_vcpu(vcpu, &shared, &tx, vcpu_seccomp));
        send(
            events,
            VmEvent::Started {
                vcpus: config.vcpus,
            },
        );
    };
    drop(tx);
    let all_stopped = stop_vcpus(&threads, &shared);
    let mut pcs = Vec::new();
    if all_stopped {
        for t in threads {
            let _ = t.join();
        }
        // Every thread has ended, so every report is in the channel.
        while let Ok(report) = rx.try_recv() {
            if let Report::Stopped { vcpu, pc: Some(pc) } = report {
                pcs.push(VcpuPc { vcpu, pc });
            }
        }
        pcs.sort_by_key(|p| p.vcpu);
    }
    shared.console.flush();
    let counts = shared.unclaimed.counts();
    if counts.total() > 0 {
        send(events, VmEvent::Unclaimed(counts));
    }
    if let Some(end) = end {
        send(events, end.unwrap_or(VmEvent::Timeout { pcs }));
    }
    if all_stopped {
        teardown(_vm, shared);
    }
    std::process::exit(0)
}

/// Whether the supervisor may answer `fault` with a reset: the policy
/// asks for it, there is one vCPU, and its state can be repaired.
fn resettable(config: &VmConfig, fault: &VcpuFault) -> bool {
    let repairable = fault.status == VcpuStatus::Poisoned;
    config.on_vcpu_fault.for_fault(config.vcpus, repairable) == FaultAction::ResetVcpu
}

/// Starts a vCPU's thread, which jails itself first.
fn start_vcpu(
    vcpu: Vcpu,
    shared: &Arc<Shared>,
    tx: &mpsc::Sender<Report>,
    vcpu_seccomp: Option<jail::seccomp::Mode>,
) -> JoinHandle<Vcpu> {
    let (shared, tx) = (Arc::clone(shared), tx.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("vcpu{}", vcpu.index))
        .spawn(move || {
            if let Some(mode) = vcpu_seccomp {
                jail_vcpu_thread(mode);
            }
            vcpu.run(&shared, tx)
        });
    match spawned {
        Ok(handle) => handle,
        Err(e) => {
            log::error!("cannot start a vCPU thread: {e}");
            std::process::exit(1);
        }
    }
}

/// Destroys the VM and unmaps guest memory before the process exits. Left
/// to process exit, KVM's teardown of a live VM sometimes took 4-20 ms
/// longer (multiples of the 4 ms tick, measured with bench/run.sh's cold
/// start); done here, in order, it takes ~0.5 ms every time.
///
/// With devices, destroying a VM that still has ioeventfds took 11-21 ms
/// here; taking them back first (one expedited SRCU grace period each)
/// and then destroying the VM took 5-9 ms in all (`cordon run --console
/// hello`, kvm_pvm, measured with timers around each step). The devices
/// hold a second handle on the VM, so it is destroyed when `shared` goes.
fn teardown(vm: VmFd, shared: Arc<Shared>) {
    shared.devices.unregister_ioevents();
    drop(vm);
    drop(shared);
}

/// Adds the vcpu filter to the calling thread; a vCPU that cannot be
/// jailed must not run, so failing ends the process.
fn jail_vcpu_thread(mode: jail::seccomp::Mode) {
    if let Err(e) = jail::seccomp::apply(jail::seccomp::Role::VcpuUnikernel, mode) {
        log::error!("cannot jail a vCPU thread: {}", crate::error_chain(&e));
        std::process::exit(i32::from(crate::exit::ExitCause::HostUnsupported.code()));
    }
}

fn send(events: &mut UnixStream, event: VmEvent) {
    if let Err(e) = control::send(events, &FromVm::Event(event)) {
        log::error!("cannot report to the supervisor: {e}");
        std::process::exit(1);
    }
}

/// The sandbox event a vCPU's report means, if it ends the sandbox.
fn terminal_of(report: Report) -> Option<VmEvent> {
    match report {
        Report::Exit { status, reason } => Some(VmEvent::GuestExit { status, reason }),
        Report::ConsoleBudget { limit } => Some(VmEvent::ConsoleBudget { limit }),
        Report::Fault(fault) => Some(VmEvent::VcpuFault(fault)),
        Report::Stopped { .. } => None,
    }
}

/// Reads one message from the supervisor and serves it if it is a
/// device's reconnect (the vCPUs are then woken to look at their rings
/// again); returns any other. Ends the process if the supervisor is gone.
fn read_control(control: &UnixStream, shared: &Shared) -> Option<ToVm> {
    match control::recv_with_fd::<ToVm>(control) {
        Ok((ToVm::Reconnect { slot }, fd)) => {
            let result = match fd {
                Some(fd) => shared
                    .devices
                    .reconnect(slot, UnixStream::from(fd))
                    .map_err(|e| crate::error_chain(&e)),
                None => Err("the reconnect came without a connection".to_string()),
            };
            match &result {
                Ok(()) => log::info!("device slot {slot}: reconnected to its restarted backend"),
                Err(e) => log::error!("device slot {slot}: {e}"),
            }
            let event = VmEvent::DeviceReconnected {
                slot,
                error: result.err(),
            };
            let mut out = control;
            if let Err(e) = control::send(&mut out, &FromVm::Event(event)) {
                log::error!("cannot report to the supervisor: {e}");
            }
            None
        }
        Ok((msg, _)) => Some(msg),
        Err(e) => {
            log::error!("the supervisor is gone ({e})");
            // SAFETY: _exit ends the process at once: no vCPU may outlive
            // its supervisor.
            unsafe { libc::_exit(1) }
        }
    }
}

/// Waits for the first terminal report (`Some`) or the deadline (`None`),
/// serving device reconnects on the way. Ends the process if the
/// supervisor dies (EOF on the death pipe, whose write end only the
/// supervisor holds).
fn wait_for_end(
    rx: &Receiver<Report>,
    deadline: Option<Instant>,
    shared: &Shared,
    death: &OwnedFd,
    control: &UnixStream,
    calls: &[CallFd],
    threads: &[JoinHandle<Vcpu>],
) -> Option<VmEvent> {
    loop {
        loop {
            match rx.try_recv() {
                Ok(report) => {
                    if let Some(event) = terminal_of(report) {
                        return Some(event);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    log::error!("every vCPU thread ended without a report");
                    std::process::exit(1);
                }
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return None;
        }
        match wait_for_wake(shared, Some((death, control)), calls, left) {
            Wake::Control => {
                if let Some(msg) = read_control(control, shared) {
                    log::warn!("unexpected message from the supervisor: {msg:?}");
                }
                for t in threads {
                    t.thread().unpark();
                }
            }
            Wake::Died => {
                // SAFETY: _exit ends the process at once: no vCPU may
                // outlive its supervisor.
                unsafe { libc::_exit(1) }
            }
            Wake::Used(slots) => {
                for slot in slots {
                    shared.devices.signal_used(slot);
                }
                // A vCPU in the wait call polls its rings again.
                for t in threads {
                    t.thread().unpark();
                }
            }
            Wake::Report | Wake::Timeout => {}
        }
    }
}

/// What ended a `wait_for_wake`.
enum Wake {
    /// A vCPU reported (or nothing but the timeout happened).
    Report,
    Timeout,
    /// The death pipe reported EOF.
    Died,
    /// The supervisor sent a message.
    Control,
    /// Backends signalled used buffers on these slots.
    Used(Vec<usize>),
}

/// Waits until a vCPU writes the wake eventfd, a backend signals a call
/// eventfd, the death pipe (if given) closes, the supervisor sends a
/// message (on the control socket given with it), or `timeout` passes
/// (`None`: no limit).
fn wait_for_wake(
    shared: &Shared,
    supervisor: Option<(&OwnedFd, &UnixStream)>,
    calls: &[CallFd],
    timeout: Option<Duration>,
) -> Wake {
    // Rounded up, so the deadline has passed when poll times out.
    let ms = timeout.map_or(-1, |t| {
        i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    let pollfd = |fd: i32| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = vec![
        pollfd(shared.wake.as_raw_fd()),
        pollfd(supervisor.map_or(-1, |(d, _)| d.as_raw_fd())),
        pollfd(supervisor.map_or(-1, |(_, c)| c.as_raw_fd())),
    ];
    fds.extend(calls.iter().map(|c| pollfd(c.fd.as_raw_fd())));
    // SAFETY: `fds` is a valid, initialised array of pollfds for its length.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if fds[1].revents != 0 {
        return Wake::Died;
    }
    if fds[2].revents != 0 {
        return Wake::Control;
    }
    if fds[0].revents != 0 {
        // Resets the counter; the reports themselves are in the channel.
        let _ = shared.wake.read();
    }
    let used: Vec<usize> = calls
        .iter()
        .zip(&fds[3..])
        .filter(|(_, p)| p.revents != 0)
        .map(|(c, _)| {
            let _ = c.fd.read();
            c.slot
        })
        .collect();
    match (ready, used.is_empty()) {
        (0, _) => Wake::Timeout,
        (_, false) => Wake::Used(used),
        _ => Wake::Report,
    }
}

/// Kicks every vCPU still in its run loop until all have left it or
/// `STOP_GRACE` passes; returns whether all left (their threads then end on
/// their own, and each sent its report before clearing its flag).
fn stop_vcpus(threads: &[JoinHandle<Vcpu>], shared: &Shared) -> bool {
    shared.stop.store(true, Ordering::Release);
    let give_up = Instant::now() + STOP_GRACE;
    loop {
        let running: Vec<&JoinHandle<Vcpu>> = threads
            .iter()
            .zip(&shared.in_run_loop)
            .filter(|(_, running)| running.load(Ordering::Acquire))
            .map(|(t, _)| t)
            .collect();
        if running.is_empty() {
            return true;
        }
        if Instant::now() >= give_up {
            log::warn!(
                "{} vCPU(s) did not stop within {STOP_GRACE:?}",
                running.len()
            );
            return false;
        }
        for t in running {
            t.thread().unpark();
            let _ = t.kill(SIGRTMIN());
        }
        // A vCPU that leaves its loop writes the wake eventfd; kick again
        // only after a pause, so an exiting thread is not starved.
        wait_for_wake(shared, None, &[], Some(KICK_EVERY));
    }
}
