//! Builds a ready-to-run VM from a `VmConfig` and the inherited fds.

use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::atomic::AtomicBool;
use std::time::{SystemTime, UNIX_EPOCH};

use kvm_bindings::{kvm_enable_cap, KVM_CAP_EXIT_ON_EMULATION_FAILURE};
use kvm_ioctls::{Kvm, VmFd};
use vmm_sys_util::eventfd::EventFd;

use super::console::Console;
use super::devices::{CallFd, Devices};
use super::error::{kvm_err, BootError};
use super::exits::Unclaimed;
use super::image::{read_bounded, read_image};
use super::loader;
use super::memory;
use super::vcpu::{self, Shared, Vcpu};
use crate::arch::x86_64::vcpu::{set_cpuid, set_entry_state, to_kvm_cpuid, EntryState};
use crate::arch::x86_64::ELF_MACHINE;
use crate::boot::bootinfo::{self, BootParams};
use crate::boot::elf;
use crate::boot::layout::{self, Layout, GDT_ADDR, TSS_ADDR};
use crate::config::VmConfig;
use crate::events::VcpuStatus;

/// Where KVM may put the TSS it needs for real-mode emulation on Intel:
/// three pages outside guest RAM and the device window.
const KVM_TSS_ADDR: usize = 0xfffb_d000;

/// A VM with its memory loaded and its vCPUs in their entry state.
pub struct BootedVm {
    pub vcpus: Vec<Vcpu>,
    pub shared: Shared,
    /// The backends' call eventfds: the control thread wakes vCPUs on them.
    pub calls: Vec<CallFd>,
    /// What a reset needs to load the guest again.
    pub image: GuestImage,
    pub _vm: VmFd,
}

/// The checked image (and module) the guest was loaded from, kept for
/// `reset-vcpu`, which loads it again.
pub struct GuestImage {
    bytes: std::borrow::Cow<'static, [u8]>,
    elf: elf::ElfImage,
    module: Vec<u8>,
    tsc_khz: u64,
}

impl GuestImage {
    /// Writes the image, page tables, boot info (with `boot_counter`) and
    /// module into guest memory, every byte of it (`state`: fresh memory may
    /// skip zeros), and puts each vCPU in its entry state.
    fn load(
        &self,
        config: &VmConfig,
        shared: &Shared,
        vcpus: &[&kvm_ioctls::VcpuFd],
        boot_counter: u64,
        state: loader::Memory,
    ) -> Result<loader::Loaded, BootError> {
        let layout = &shared.layout;
        let boot_time_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let params = BootParams {
            args: &config.args,
            env: &config.env,
            boot_counter,
            tsc_khz: self.tsc_khz,
            boot_time_ns,
            fuel: config.fuel,
            devices: &shared.devices.boot_info(),
        };
        let info = bootinfo::build(layout, config.vcpus, &params)?;
        let loaded = loader::load(
            &shared.memory,
            &self.elf,
            &self.bytes,
            layout,
            &info,
            &self.module,
            state,
        )?;
        for (index, (fd, stack)) in vcpus.iter().zip(&layout.stacks).enumerate() {
            let state = EntryState {
                index: index as u32,
                entry: self.elf.entry,
                stack_top: stack.top,
                boot_info: layout.boot_info.base,
                page_table_root: loaded.page_table_root,
                gdt_addr: GDT_ADDR,
                tss_addr: TSS_ADDR,
            };
            set_entry_state(fd, &state).map_err(kvm_err("set a vCPU's entry state"))?;
        }
        if config.test_bad_entry_state && state == loader::Memory::Fresh {
            if let Some(fd) = vcpus.first() {
                spoil_entry_state(fd)?;
            }
        }
        Ok(loaded)
    }

    /// `reset-vcpu`: stops every device's rings (so no backend writes into
    /// the reloaded memory), then loads the guest again with `boot_counter`
    /// and puts the (single) vCPU back in its entry state.
    pub fn reload(
        &self,
        config: &VmConfig,
        shared: &Shared,
        vcpu: &kvm_ioctls::VcpuFd,
        boot_counter: u64,
    ) -> Result<(), BootError> {
        shared.devices.reset_all();
        self.load(config, shared, &[vcpu], boot_counter, loader::Memory::Used)?;
        Ok(())
    }
}

/// Another `VmFd` on the same VM (a dup of its fd), for the devices, which
/// register ioeventfds from the vCPU threads.
fn second_handle(kvm: &Kvm, vm: &VmFd) -> Result<VmFd, BootError> {
    // SAFETY: dup of an open fd we own; the new fd is ours.
    let fd = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(vm),
            libc::F_DUPFD_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(BootError::EventFd(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a VM fd of this process, owned by nobody else; the
    // VmFd takes it over.
    unsafe { kvm.create_vmfd_from_rawfd(fd) }.map_err(kvm_err("open a second handle on the VM"))
}

/// Reads the module, at most `limit` bytes (the free guest memory).
fn read_module(mut file: File, limit: u64) -> Result<Vec<u8>, BootError> {
    read_bounded(&mut file, limit)
        .map_err(BootError::ReadModule)?
        .map_err(|len| BootError::Layout(layout::LayoutError::ModuleTooLarge { len, free: limit }))
}

/// `--test-bad-entry-state`: CS.D beside CS.L in long mode, which VMX's
/// guest-state checks and SVM's VMRUN consistency checks refuse.
fn spoil_entry_state(vcpu: &kvm_ioctls::VcpuFd) -> Result<(), BootError> {
    let mut sregs = vcpu
        .get_sregs()
        .map_err(kvm_err("read a vCPU's entry state"))?;
    sregs.cs.db = 1;
    vcpu.set_sregs(&sregs)
        .map_err(kvm_err("set a vCPU's entry state"))
}

/// Asks KVM to report an instruction it cannot emulate as
/// KVM_EXIT_INTERNAL_ERROR even at CPL3: without this, VMX and SVM inject #UD
/// instead (a triple fault here), hiding the cause. kvm_pvm reports it
/// either way.
fn exit_on_emulation_failure(vm: &VmFd) {
    let cap = kvm_enable_cap {
        cap: KVM_CAP_EXIT_ON_EMULATION_FAILURE,
        args: [1, 0, 0, 0],
        ..Default::default()
    };
    if let Err(e) = vm.enable_cap(&cap) {
        log::debug!("KVM_CAP_EXIT_ON_EMULATION_FAILURE not available ({e})");
    }
}

/// Creates the VM described by `config`; `wasm_runtime` is the image when
/// the config names no image file (a Wasm module's sandbox).
pub fn boot(config: &VmConfig, wasm_runtime: &'static [u8]) -> Result<BootedVm, BootError> {
    // SAFETY: the supervisor passed these fds at these numbers (VmConfig::fds)
    // for this process alone; each is wrapped exactly once, here.
    let (kvm, memfd) = unsafe {
        (
            Kvm::from_raw_fd(config.fds.kvm),
            File::from_raw_fd(config.fds.memory),
        )
    };
    let image: std::borrow::Cow<'static, [u8]> = match config.fds.image {
        Some(fd) => {
            // SAFETY: as above, for the image's fd.
            let mut file = unsafe { File::from_raw_fd(fd) };
            std::borrow::Cow::Owned(read_image(&mut file, config.mem_bytes)?)
        }
        None if wasm_runtime.is_empty() => return Err(BootError::NoWasmRuntime),
        None => std::borrow::Cow::Borrowed(wasm_runtime),
    };
    let ram = layout::ram_ranges(config.mem_bytes);
    let elf = elf::parse(&image, ELF_MACHINE, &layout::image_ranges(&ram))?;
    let mut layout = Layout::new(config.mem_bytes, config.vcpus, elf.end())?;
    let module = match config.fds.module {
        // SAFETY: the supervisor passed the module at this number for this
        // process alone; it is wrapped once, here.
        Some(fd) => read_module(unsafe { File::from_raw_fd(fd) }, layout.free.size)?,
        None => Vec::new(),
    };
    if !module.is_empty() {
        layout.place_module(module.len() as u64)?;
    }

    let vm = kvm.create_vm().map_err(kvm_err("create a VM"))?;
    if let Err(e) = vm.set_tss_address(KVM_TSS_ADDR) {
        log::debug!("KVM_SET_TSS_ADDR failed ({e}); only Intel needs it");
    }
    exit_on_emulation_failure(&vm);
    let mem = memory::map(&memfd, &ram)?;
    memory::register(&vm, &mem)?;
    let fds = (0..config.vcpus)
        .map(|i| vm.create_vcpu(u64::from(i)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(kvm_err("create a vCPU"))?;
    let (devices, calls) = if config.devices.is_empty() {
        (Devices::none(&mem), Vec::new())
    } else {
        Devices::connect(&config.devices, second_handle(&kvm, &vm)?, &mem, &memfd)?
    };
    let tsc_khz = fds.first().and_then(|v| v.get_tsc_khz().ok()).unwrap_or(0);
    let cpuid = to_kvm_cpuid(&config.cpuid).map_err(|_| BootError::Cpuid)?;
    for (index, fd) in fds.iter().enumerate() {
        set_cpuid(fd, &cpuid, index as u32).map_err(kvm_err("set a vCPU's CPUID"))?;
    }
    let image = GuestImage {
        bytes: image,
        elf,
        module,
        tsc_khz: u64::from(tsc_khz),
    };
    vcpu::install_kick_handler().map_err(|e| BootError::Kvm {
        what: "install the kick handler",
        source: e,
    })?;
    let mut shared = Shared {
        console: Console::new(std::io::stdout(), config.console_budget, fds.len()),
        unclaimed: Unclaimed::default(),
        stop: AtomicBool::new(false),
        in_run_loop: fds.iter().map(|_| AtomicBool::new(true)).collect(),
        wake: EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(BootError::EventFd)?,
        layout,
        // Kept alive for the VM's lifetime: KVM maps this memory.
        memory: mem,
        devices,
        page_map: Default::default(),
    };
    let fd_refs: Vec<&kvm_ioctls::VcpuFd> = fds.iter().collect();
    let loaded = image.load(
        config,
        &shared,
        &fd_refs,
        config.boot_counter,
        loader::Memory::Fresh,
    )?;
    shared.page_map = loaded.page_map;
    let vcpus = fds
        .into_iter()
        .enumerate()
        .map(|(index, fd)| Vcpu {
            fd,
            index: index as u32,
            status: VcpuStatus::Ready,
        })
        .collect();
    Ok(BootedVm {
        vcpus,
        shared,
        calls,
        image,
        _vm: vm,
    })
}
