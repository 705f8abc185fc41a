//! The vm process on arm64, first cut: one vCPU, no virtio devices, the
//! Guest ABI for arm64 (docs/guest-abi.md, "arm64"): RAM from 0x4000_0000
//! with the boot info at its start, the image at or above RAM + 1 MiB, the
//! stack at the top, a debug console byte register and an exit register in
//! the page at 0x0900_0000, PSCI SYSTEM_OFF as status 0. A fault goes to
//! the supervisor like on x86_64; under `reset-vcpu` a repairable one (the
//! bad-AArch32 invalidation, an uninitialised vCPU) is answered by
//! reloading the image and `recovery::recover` (KVM_ARM_VCPU_INIT with the
//! creation's target and features, then the entry registers). The vCPU
//! runs on the process's main thread; `--timeout` is a timer thread that
//! kicks it out of KVM_RUN (SIGRTMIN) when the time is up.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use guest_abi::{MemRange, BOOT_INFO_SIZE, PAGE_SIZE, STACK_SIZE};
use kvm_bindings::{kvm_userspace_memory_region, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::error::{kvm_err, BootError};
use super::image::read_image;
use crate::arch::aarch64::recovery::{self, EntryState, VcpuInit};
use crate::arch::aarch64::{regs, vcpu, ELF_MACHINE};
use crate::boot::bootinfo::{self, BootParams};
use crate::boot::elf::{self, ElfImage};
use crate::boot::layout::{align_up, Layout, Stack};
use crate::config::VmConfig;
use crate::control::{self, FromVm, ToVm};
use crate::events::{FaultKind, VcpuFault, VcpuPc, VcpuStatus, VmEvent};
use crate::policy::FaultAction;

/// Guest RAM's base.
const RAM_BASE: u64 = 0x4000_0000;
/// Images start at or above RAM + 1 MiB.
const IMAGE_MIN: u64 = RAM_BASE + 0x10_0000;
/// cordon's registers: a byte store to `CONSOLE` writes it to the debug
/// console; a store to `EXIT` ends the sandbox with that status.
const MMIO_PAGE: u64 = 0x0900_0000;
const CONSOLE: u64 = MMIO_PAGE;
const EXIT: u64 = MMIO_PAGE + 0x10;
/// Where virtio devices will sit (none yet).
const DEVICE_WINDOW: MemRange = MemRange {
    base: 0x0a00_0000,
    size: 0x10_0000,
};

/// Boots the arm64 guest and runs it to its end; returns only if booting
/// failed.
pub fn boot_and_run(config: &VmConfig, events: &mut UnixStream) -> BootError {
    match Guest::boot(config) {
        Ok(guest) => guest.run(config, events),
        Err(e) => e,
    }
}

struct Guest {
    _vm: VmFd,
    vcpu: VcpuFd,
    init: VcpuInit,
    mem: GuestMemoryMmap,
    elf: ElfImage,
    image: Vec<u8>,
    layout: Layout,
}

impl Guest {
    fn boot(config: &VmConfig) -> Result<Guest, BootError> {
        if config.vcpus != 1 || !config.devices.is_empty() {
            return Err(BootError::UnsupportedArch(
                "aarch64 with more than one vCPU or with devices",
            ));
        }
        let Some(image_fd) = config.fds.image else {
            return Err(BootError::UnsupportedArch("aarch64 Wasm modules"));
        };
        // SAFETY: the supervisor passed these fds at these numbers
        // (VmConfig::fds) for this process alone; each is wrapped once.
        let (kvm, memfd, mut file) = unsafe {
            (
                Kvm::from_raw_fd(config.fds.kvm),
                File::from_raw_fd(config.fds.memory),
                File::from_raw_fd(image_fd),
            )
        };
        let image = read_image(&mut file, config.mem_bytes)?;
        let ram_end = RAM_BASE + config.mem_bytes;
        let elf = elf::parse(&image, ELF_MACHINE, &[IMAGE_MIN..ram_end])?;
        let layout = layout(config.mem_bytes, elf.end())?;
        let vm = kvm.create_vm().map_err(kvm_err("create a VM"))?;
        let mem = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(RAM_BASE),
            config.mem_bytes as usize,
            Some(FileOffset::new(memfd, 0)),
        )])
        .map_err(|_| BootError::UnsupportedArch("guest memory of this size on aarch64"))?;
        let host = mem
            .get_host_address(GuestAddress(RAM_BASE))
            .map_err(|_| BootError::UnsupportedArch("guest memory on aarch64"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: RAM_BASE,
            memory_size: config.mem_bytes,
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live shared mapping owned by `mem`, which
        // lives as long as the VM (both are fields of `Guest`).
        unsafe { vm.set_user_memory_region(region) }.map_err(kvm_err("map guest memory"))?;
        let init = vcpu::preferred_init(&vm).map_err(kvm_err("find the vCPU target"))?;
        let vcpu = vm.create_vcpu(0).map_err(kvm_err("create a vCPU"))?;
        let mut guest = Guest {
            _vm: vm,
            vcpu,
            init,
            mem,
            elf,
            image,
            layout,
        };
        guest.load(config, config.boot_counter)?;
        Ok(guest)
    }

    fn entry(&self) -> EntryState {
        EntryState {
            entry: self.elf.entry,
            boot_info: self.layout.boot_info.base,
            index: 0,
            stack_top: self.layout.stacks[0].top,
        }
    }

    /// Writes the segments (bss zeroed) and the boot info, then
    /// (re)initialises the vCPU into its entry state.
    fn load(&mut self, config: &VmConfig, boot_counter: u64) -> Result<(), BootError> {
        let write = |mem: &GuestMemoryMmap, at: u64, bytes: &[u8]| {
            mem.write_slice(bytes, GuestAddress(at))
                .map_err(|_| BootError::UnsupportedArch("an image outside aarch64 RAM"))
        };
        for s in &self.elf.segments {
            let bytes = &self.image[s.file.clone()];
            write(&self.mem, s.mem.start, bytes)?;
            let bss = (s.mem.end - s.mem.start) as usize - bytes.len();
            write(&self.mem, s.mem.start + bytes.len() as u64, &vec![0; bss])?;
        }
        let params = BootParams {
            args: &config.args,
            env: &config.env,
            boot_counter,
            tsc_khz: 0,
            boot_time_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            fuel: config.fuel,
            devices: &[],
        };
        let info = bootinfo::build(&self.layout, 1, &params)?;
        write(&self.mem, self.layout.boot_info.base, &info)?;
        let entry = self.entry();
        recovery::recover(&mut self.vcpu, &self.init, &entry).map_err(|e| BootError::Kvm {
            what: "initialise the vCPU",
            source: kvm_ioctls::Error::new(match e {
                recovery::RecoveryError::Init(errno) => errno,
                recovery::RecoveryError::Register { errno, .. } => errno,
            }),
        })
    }

    /// Runs the guest; never returns.
    fn run(mut self, config: &VmConfig, events: &mut UnixStream) -> ! {
        let timed_out = config
            .timeout_ms
            .map(|ms| start_timer(Duration::from_millis(ms)));
        send(events, VmEvent::Started { vcpus: 1 });
        let mut stdout = std::io::stdout();
        loop {
            if timed_out
                .as_ref()
                .is_some_and(|t| t.load(Ordering::Acquire))
            {
                let pcs = self
                    .pc()
                    .map(|pc| vec![VcpuPc { vcpu: 0, pc }])
                    .unwrap_or_default();
                self.end(events, VmEvent::Timeout { pcs })
            }
            let fault = match self.vcpu.run() {
                Ok(VcpuExit::MmioWrite(CONSOLE, data)) => {
                    let _ = stdout.write_all(&data[..1]);
                    if data[0] == b'\n' {
                        let _ = stdout.flush();
                    }
                    continue;
                }
                Ok(VcpuExit::MmioWrite(EXIT, data)) => {
                    let mut word = [0u8; 4];
                    let n = data.len().min(4);
                    word[..n].copy_from_slice(&data[..n]);
                    self.end(
                        events,
                        VmEvent::GuestExit {
                            status: u32::from_le_bytes(word),
                            reason: None,
                        },
                    )
                }
                Ok(VcpuExit::MmioRead(_, data)) => {
                    data.fill(0xff);
                    continue;
                }
                Ok(VcpuExit::MmioWrite(..)) => continue,
                Ok(VcpuExit::SystemEvent(KVM_SYSTEM_EVENT_SHUTDOWN, _)) => self.end(
                    events,
                    VmEvent::GuestExit {
                        status: 0,
                        reason: None,
                    },
                ),
                Ok(VcpuExit::FailEntry(hardware_reason, _)) => {
                    recovery::classify(Ok(()), recovery::EXIT_FAIL_ENTRY, hardware_reason)
                }
                Ok(other) => {
                    log::debug!("unhandled exit {other:?}");
                    let reason = self.vcpu.get_kvm_run().exit_reason;
                    self.fault(config, events, FaultKind::UnhandledExit { reason });
                    continue;
                }
                Err(e) if e.errno() == libc::EINTR => {
                    self.vcpu.set_kvm_immediate_exit(0);
                    continue;
                }
                Err(e) => {
                    let (reason, hardware) = vcpu::run_page_reasons(&mut self.vcpu);
                    recovery::classify(Err(e.errno()), reason, hardware)
                }
            };
            if let Some(fault) = fault {
                self.fault(config, events, fault.into());
            }
        }
    }

    /// Reports a fault; under `reset-vcpu` a repairable one waits for the
    /// supervisor, whose `ResetVcpu` reloads the guest and goes on. Ends the
    /// process otherwise.
    fn fault(&mut self, config: &VmConfig, events: &mut UnixStream, kind: FaultKind) {
        let status = kind.status();
        let pc = self.pc();
        let fault = VcpuFault {
            vcpu: 0,
            kind,
            pc,
            hint: None,
            status,
        };
        let resettable = config
            .on_vcpu_fault
            .for_fault(1, status == VcpuStatus::Poisoned)
            == FaultAction::ResetVcpu;
        if !resettable {
            self.end(events, VmEvent::VcpuFault(fault));
        }
        send(events, VmEvent::VcpuFault(fault));
        let boot_counter = match control::recv_with_fd::<ToVm>(events) {
            Ok((ToVm::ResetVcpu { boot_counter }, _)) => boot_counter,
            _ => std::process::exit(0),
        };
        if let Err(e) = self.load(config, boot_counter) {
            self.end(
                events,
                VmEvent::BootFailed {
                    cause: e.cause(),
                    message: crate::error_chain(&e),
                },
            );
        }
        send(events, VmEvent::Started { vcpus: 1 });
    }

    /// The guest's PC, unless KVM refuses ONE_REG (an invalidated vCPU).
    fn pc(&self) -> Option<u64> {
        let mut pc = [0u8; 8];
        self.vcpu.get_one_reg(regs::PC, &mut pc).ok()?;
        Some(u64::from_le_bytes(pc))
    }

    fn end(&mut self, events: &mut UnixStream, event: VmEvent) -> ! {
        let _ = std::io::stdout().flush();
        send(events, event);
        std::process::exit(0)
    }
}

/// SIGRTMIN's handler: only interrupts KVM_RUN.
extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Starts the `--timeout` timer: after `after` it sets the returned flag and
/// kicks this (the vCPU's) thread out of KVM_RUN, again every few ms in case
/// a kick lands between the flag check and KVM_RUN, until the process ends.
fn start_timer(after: Duration) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    if let Err(e) =
        vmm_sys_util::signal::register_signal_handler(vmm_sys_util::signal::SIGRTMIN(), on_kick)
    {
        log::error!("cannot install the kick handler ({e}); --timeout falls to the supervisor");
        return flag;
    }
    // SAFETY: pthread_self has no preconditions.
    let vcpu_thread = unsafe { libc::pthread_self() };
    let set = Arc::clone(&flag);
    let spawned = std::thread::Builder::new()
        .name("timeout".into())
        .spawn(move || {
            // park_timeout waits on a futex, which the vm policy allows
            // (std's sleep is clock_nanosleep, which it does not).
            let deadline = Instant::now() + after;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                std::thread::park_timeout(left);
            }
            set.store(true, Ordering::Release);
            loop {
                // SAFETY: the vCPU thread is the process's main thread, which
                // lives as long as the process; the signal's handler does
                // nothing but interrupt a system call.
                unsafe { libc::pthread_kill(vcpu_thread, vmm_sys_util::signal::SIGRTMIN()) };
                std::thread::park_timeout(Duration::from_millis(5));
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the timer ({e}); --timeout falls to the supervisor");
    }
    flag
}

/// RAM from `RAM_BASE`: boot info at its start, the stack (and its guard
/// page below) at its top, free memory between the image and the guard.
fn layout(mem_bytes: u64, image_end: u64) -> Result<Layout, BootError> {
    let top = RAM_BASE + mem_bytes;
    let guard = top - STACK_SIZE - PAGE_SIZE;
    let free_start = align_up(image_end.max(IMAGE_MIN));
    if guard < free_start {
        return Err(crate::boot::layout::LayoutError::NoRoomForStacks {
            image_end,
            stacks: guard,
            vcpus: 1,
        }
        .into());
    }
    Ok(Layout {
        ram: vec![MemRange {
            base: RAM_BASE,
            size: mem_bytes,
        }],
        device_window: DEVICE_WINDOW,
        boot_info: MemRange {
            base: RAM_BASE,
            size: BOOT_INFO_SIZE,
        },
        stacks: vec![Stack { top, guard }],
        free: MemRange {
            base: free_start,
            size: guard - free_start,
        },
        module: MemRange::default(),
    })
}

fn send(events: &mut UnixStream, event: VmEvent) {
    if let Err(e) = control::send(events, &FromVm::Event(event)) {
        log::error!("cannot report to the supervisor: {e}");
        std::process::exit(1);
    }
}
