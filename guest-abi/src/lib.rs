//! Guest ABI v1: what `cordon run` promises an x86_64 ELF unikernel.
//!
//! This crate is `no_std` and has no dependencies so that both sides use the
//! same definitions: the host (`vmm`) writes these structures into guest
//! memory, and the guests in `guest-images/` read them. The prose version is
//! `docs/guest-abi.md`; the two must agree.
//!
//! All multi-byte fields are little-endian. All addresses are guest-physical,
//! which equal guest-virtual addresses (identity map).
#![no_std]

/// `BootInfo::magic`: the bytes "CORDONBI" read as a little-endian u64.
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"CORDONBI");
/// `BootInfo::version` for this ABI.
pub const BOOT_INFO_VERSION: u32 = 1;

/// Debug console: each byte written (`out dx, al`) goes to cordon's stdout.
pub const PORT_CONSOLE: u16 = 0xE9;
/// Console write: an `out` of any size writes the RCX bytes at address RSI
/// to the debug console in one exit (at most `CONSOLE_WRITE_MAX` bytes, all
/// in guest RAM). The registers are those of `rep outsb`, which on some
/// hosts (kvm_pvm) exits once per byte.
pub const PORT_CONSOLE_WRITE: u16 = 0xEA;
/// Most bytes one console write may carry.
pub const CONSOLE_WRITE_MAX: u64 = 0x1_0000;
/// Exit: a 32-bit write (`out dx, eax`) ends the sandbox with that status.
pub const PORT_EXIT: u16 = 0xF4;
/// Exit with a reason: a 32-bit write (`out dx, eax`) ends the sandbox with
/// that status, like `PORT_EXIT`, and hands the VMM the RCX bytes of text at
/// RSI (at most `EXIT_REASON_MAX`, UTF-8, in guest RAM) saying why: the
/// Wasm runtime's one-line messages, which cordon prints on stderr.
pub const PORT_EXIT_REASON: u16 = 0xF5;
/// Most bytes of an exit reason.
pub const EXIT_REASON_MAX: u64 = 512;
/// Wait: a 32-bit write blocks the vCPU until a device signals or the given
/// number of microseconds passes. `WAIT_FOREVER` means no deadline.
pub const PORT_WAIT: u16 = 0xF8;
/// `PORT_WAIT` value meaning "until a device signals".
pub const WAIT_FOREVER: u32 = u32::MAX;

/// Guest-physical address of the boot-info area (read-only to the guest).
pub const BOOT_INFO_ADDR: u64 = 0x1_0000;
/// Size of the boot-info area: the header, the tables and every string of
/// argv and the environment must fit in it.
pub const BOOT_INFO_SIZE: u64 = 0x1_0000;
/// Lowest address an ELF segment may use. Below it: an unmapped null page,
/// the boot-info area and the (guest-inaccessible) GDT and page tables.
pub const IMAGE_MIN_ADDR: u64 = 0x10_0000;
/// Base of the device window (virtio-mmio slots), mapped uncached.
pub const DEVICE_WINDOW_BASE: u64 = 0xD000_0000;
/// Size of the device window: 256 slots of 4 KiB.
pub const DEVICE_WINDOW_SIZE: u64 = 0x10_0000;
/// RAM below this address is in the first range; the rest starts at 4 GiB.
pub const LOW_RAM_END: u64 = 0xC000_0000;
/// Where RAM continues when the guest has more than `LOW_RAM_END` bytes.
pub const HIGH_RAM_BASE: u64 = 0x1_0000_0000;
/// Size of each vCPU's stack. An unmapped guard page sits below each one.
pub const STACK_SIZE: u64 = 0x4_0000;
/// Page size of the identity map's smallest pages.
pub const PAGE_SIZE: u64 = 0x1000;

/// Most RAM ranges a `BootInfo` can describe.
pub const MAX_RAM_RANGES: usize = 2;

/// The `wasi_snapshot_preview1` functions the Wasm runtime implements; it
/// answers any other one with ENOSYS, and `cordon run --strict-wasi`
/// refuses a module that imports one.
pub const WASI_SUPPORTED: [&str; 17] = [
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_read",
    "fd_seek",
    "fd_write",
    "poll_oneoff",
    "proc_exit",
    "random_get",
    "sched_yield",
];

/// Exit statuses of the Wasm runtime (`guest-images/wasm`) for its own
/// causes. A module's own status (`proc_exit`) is 0..=255; these are above
/// it, and the supervisor maps them to cordon's exit codes when it runs the
/// runtime. Each is preceded by one line on the console starting "wasm: ".
pub mod wasm_exit {
    /// The boot info describes no module.
    pub const NO_MODULE: u32 = 0x100;
    /// The module does not validate or compile.
    pub const INVALID_MODULE: u32 = 0x101;
    /// The module cannot be instantiated (imports, start section).
    pub const INSTANTIATION: u32 = 0x102;
    /// The module exports no `_start` function of type `() -> ()`.
    pub const NO_START: u32 = 0x103;
    /// The module trapped.
    pub const TRAP: u32 = 0x104;
    /// The module ran out of fuel.
    pub const OUT_OF_FUEL: u32 = 0x105;
}

/// The virtio-mmio version 2 register layout (virtio 1.2, 4.2.2), shared
/// by cordon's transport and the guests' drivers.
pub mod virtio_mmio {
    /// Register offsets in a device's window.
    pub mod reg {
        pub const MAGIC: u64 = 0x000;
        pub const VERSION: u64 = 0x004;
        pub const DEVICE_ID: u64 = 0x008;
        pub const VENDOR_ID: u64 = 0x00c;
        pub const DEVICE_FEATURES: u64 = 0x010;
        pub const DEVICE_FEATURES_SEL: u64 = 0x014;
        pub const DRIVER_FEATURES: u64 = 0x020;
        pub const DRIVER_FEATURES_SEL: u64 = 0x024;
        pub const QUEUE_SEL: u64 = 0x030;
        pub const QUEUE_NUM_MAX: u64 = 0x034;
        pub const QUEUE_NUM: u64 = 0x038;
        pub const QUEUE_READY: u64 = 0x044;
        pub const QUEUE_NOTIFY: u64 = 0x050;
        pub const INTERRUPT_STATUS: u64 = 0x060;
        pub const INTERRUPT_ACK: u64 = 0x064;
        pub const STATUS: u64 = 0x070;
        pub const QUEUE_DESC_LOW: u64 = 0x080;
        pub const QUEUE_DESC_HIGH: u64 = 0x084;
        pub const QUEUE_DRIVER_LOW: u64 = 0x090;
        pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
        pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
        pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
        pub const CONFIG_GENERATION: u64 = 0x0fc;
        pub const CONFIG: u64 = 0x100;
    }

    /// Device status bits (virtio 1.2, 2.1).
    pub mod status {
        pub const ACKNOWLEDGE: u32 = 1;
        pub const DRIVER: u32 = 2;
        pub const DRIVER_OK: u32 = 4;
        pub const FEATURES_OK: u32 = 8;
        pub const DEVICE_NEEDS_RESET: u32 = 0x40;
        pub const FAILED: u32 = 0x80;
    }

    /// "virt" as a little-endian u32: MagicValue.
    pub const MAGIC: u32 = 0x7472_6976;
    /// The transport version cordon implements.
    pub const VERSION_2: u32 = 2;
    /// Bytes of one device's register window (one slot of the device window).
    pub const WINDOW_SIZE: u64 = 0x1000;
}

/// A range of guest-physical memory. `size == 0` means "none".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemRange {
    pub base: u64,
    pub size: u64,
}

impl MemRange {
    /// First address past the range.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// A string in the boot-info area: `len` bytes at `addr`, followed by a NUL
/// that `len` does not count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrRef {
    pub addr: u64,
    pub len: u64,
}

/// A virtio-mmio (version 2) device in the device window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioMmioDevice {
    pub base: u64,
    pub size: u64,
    /// Virtio device id (3 console, 2 block, 4 rng).
    pub device_id: u32,
    pub reserved: u32,
}

/// The header at `BOOT_INFO_ADDR`. `RDI` holds its address at entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootInfo {
    /// `BOOT_INFO_MAGIC`.
    pub magic: u64,
    /// `BOOT_INFO_VERSION`.
    pub version: u32,
    /// Bytes of the boot-info area in use, header included.
    pub size: u32,
    /// 0 on the first boot; incremented by each restart of the sandbox.
    pub boot_counter: u64,
    /// TSC frequency in kHz (0 if the host could not tell).
    pub tsc_khz: u64,
    /// Wall-clock time at boot, nanoseconds since the Unix epoch.
    pub boot_time_ns: u64,
    /// Number of vCPUs; each enters with `RSI` = its index.
    pub vcpu_count: u32,
    /// Number of valid entries in `ram`.
    pub ram_count: u32,
    /// Guest RAM.
    pub ram: [MemRange; MAX_RAM_RANGES],
    /// The device window (uncached, user-accessible, not executable).
    pub device_window: MemRange,
    /// RAM the guest may use freely: after the image, below the stacks.
    pub free: MemRange,
    /// An optional module (for example Wasm bytes); `size == 0` if none.
    pub module: MemRange,
    /// Number of `StrRef`s at `argv`.
    pub argc: u64,
    /// Address of `argc` `StrRef`s.
    pub argv: u64,
    /// Number of `StrRef`s at `envp`, each "KEY=VALUE".
    pub envc: u64,
    /// Address of `envc` `StrRef`s.
    pub envp: u64,
    /// Number of `VirtioMmioDevice`s at `devices`.
    pub device_count: u64,
    /// Address of `device_count` `VirtioMmioDevice`s.
    pub devices: u64,
    /// For the Wasm runtime: units of fuel the module may burn before it is
    /// stopped (`--fuel`); 0 means no limit.
    pub fuel: u64,
}

/// Size of the `BootInfo` header in bytes.
pub const BOOT_INFO_HEADER_SIZE: usize = core::mem::size_of::<BootInfo>();

impl BootInfo {
    /// Whether the header carries this ABI's magic and version.
    pub fn is_valid(&self) -> bool {
        self.magic == BOOT_INFO_MAGIC && self.version == BOOT_INFO_VERSION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_stable() {
        // The layout is part of the ABI: changing it breaks every guest.
        assert_eq!(BOOT_INFO_HEADER_SIZE, 0xB8);
        assert_eq!(core::mem::size_of::<StrRef>(), 16);
        assert_eq!(core::mem::size_of::<VirtioMmioDevice>(), 24);
    }

    #[test]
    fn memory_map_is_ordered() {
        const {
            assert!(BOOT_INFO_ADDR + BOOT_INFO_SIZE <= IMAGE_MIN_ADDR);
            assert!(LOW_RAM_END <= DEVICE_WINDOW_BASE);
            assert!(DEVICE_WINDOW_BASE + DEVICE_WINDOW_SIZE <= HIGH_RAM_BASE);
        }
    }
}
