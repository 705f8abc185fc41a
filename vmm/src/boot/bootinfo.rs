//! Writes the boot-info area (header, string tables, strings) as bytes.

use guest_abi::{
    BootInfo, MemRange, StrRef, VirtioMmioDevice, BOOT_INFO_HEADER_SIZE, BOOT_INFO_MAGIC,
    BOOT_INFO_SIZE, BOOT_INFO_VERSION, MAX_RAM_RANGES,
};

use super::layout::Layout;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootInfoError {
    #[error("arguments and environment need {needed} bytes of boot info, more than the {limit} available")]
    TooLarge { needed: usize, limit: usize },
}

/// What goes into boot info besides the layout.
#[derive(Clone, Debug, Default)]
pub struct BootParams<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub boot_counter: u64,
    pub tsc_khz: u64,
    pub boot_time_ns: u64,
    /// `--fuel`, 0 for none.
    pub fuel: u64,
    pub devices: &'a [VirtioMmioDevice],
}

const STR_REF_SIZE: usize = std::mem::size_of::<StrRef>();
const DEVICE_SIZE: usize = std::mem::size_of::<VirtioMmioDevice>();

/// Bytes of boot info `args` and `env` need (checked before a vm process is
/// started, so a too-large command line fails early).
pub fn needed_size(args: &[String], env: &[String], devices: usize) -> usize {
    let strings: usize = args.iter().chain(env).map(|s| s.len() + 1).sum();
    // Up to 7 bytes of padding before each of the three tables.
    BOOT_INFO_HEADER_SIZE
        + 3 * 7
        + (args.len() + env.len()) * STR_REF_SIZE
        + devices * DEVICE_SIZE
        + strings
}

/// Checks that `args` and `env` fit.
pub fn check_size(args: &[String], env: &[String], devices: usize) -> Result<(), BootInfoError> {
    let needed = needed_size(args, env, devices);
    let limit = BOOT_INFO_SIZE as usize;
    if needed > limit {
        return Err(BootInfoError::TooLarge { needed, limit });
    }
    Ok(())
}

/// Builds the boot-info bytes to be written at `layout.boot_info.base`.
pub fn build(layout: &Layout, vcpus: u32, p: &BootParams) -> Result<Vec<u8>, BootInfoError> {
    check_size(p.args, p.env, p.devices.len())?;
    let base = layout.boot_info.base;
    let mut out = vec![0u8; BOOT_INFO_HEADER_SIZE];
    let argv = push_strings(&mut out, base, p.args);
    let envp = push_strings(&mut out, base, p.env);
    align8(&mut out);
    let devices = base + out.len() as u64;
    for d in p.devices {
        out.extend_from_slice(as_bytes(d));
    }
    let mut ram = [MemRange::default(); MAX_RAM_RANGES];
    for (slot, r) in ram.iter_mut().zip(&layout.ram) {
        *slot = *r;
    }
    let header = BootInfo {
        magic: BOOT_INFO_MAGIC,
        version: BOOT_INFO_VERSION,
        size: out.len() as u32,
        boot_counter: p.boot_counter,
        tsc_khz: p.tsc_khz,
        boot_time_ns: p.boot_time_ns,
        vcpu_count: vcpus,
        ram_count: layout.ram.len().min(MAX_RAM_RANGES) as u32,
        ram,
        device_window: layout.device_window,
        free: layout.free,
        module: layout.module,
        argc: p.args.len() as u64,
        argv,
        envc: p.env.len() as u64,
        envp,
        device_count: p.devices.len() as u64,
        devices,
        fuel: p.fuel,
    };
    out[..BOOT_INFO_HEADER_SIZE].copy_from_slice(as_bytes(&header));
    Ok(out)
}

/// Appends a `StrRef` table and then the strings; returns the table's address.
fn push_strings(out: &mut Vec<u8>, base: u64, strings: &[String]) -> u64 {
    align8(out);
    let table_at = out.len();
    out.resize(table_at + strings.len() * STR_REF_SIZE, 0);
    for (i, s) in strings.iter().enumerate() {
        let r = StrRef {
            addr: base + out.len() as u64,
            len: s.len() as u64,
        };
        out.extend_from_slice(s.as_bytes());
        out.push(0);
        let at = table_at + i * STR_REF_SIZE;
        out[at..at + STR_REF_SIZE].copy_from_slice(as_bytes(&r));
    }
    base + table_at as u64
}

/// Pads `out` so the next table starts 8-byte aligned (tables hold u64s).
fn align8(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(8), 0);
}

/// The bytes of a plain `#[repr(C)]` ABI struct with no padding.
fn as_bytes<T: AbiStruct>(value: &T) -> &[u8] {
    // SAFETY: `AbiStruct` is only implemented for the `#[repr(C)]` structs of
    // `guest_abi`, made of u32/u64 fields without padding, so every byte of
    // the value is initialised; the slice borrows `value` for its lifetime.
    unsafe {
        std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>())
    }
}

/// Marker for the padding-free ABI structs `as_bytes` may view.
trait AbiStruct {}
impl AbiStruct for BootInfo {}
impl AbiStruct for StrRef {}
impl AbiStruct for VirtioMmioDevice {}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_u64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn strings_are_reachable_from_the_header() {
        let layout = Layout::new(64 << 20, 1, 0x20_3000).unwrap();
        let args = vec!["hello".to_string(), "7".to_string()];
        let env = vec!["K=V".to_string()];
        let params = BootParams {
            args: &args,
            env: &env,
            boot_counter: 3,
            ..Default::default()
        };
        let b = build(&layout, 1, &params).unwrap();
        assert_eq!(read_u64(&b, 0), BOOT_INFO_MAGIC);
        assert_eq!(read_u64(&b, 16), 3);
        // Offsets from docs/guest-abi.md: argv at 0x88, envp at 0x98.
        let argv = read_u64(&b, 0x88) - layout.boot_info.base;
        let second = argv as usize + STR_REF_SIZE;
        let addr = read_u64(&b, second) - layout.boot_info.base;
        let len = read_u64(&b, second + 8) as usize;
        assert_eq!(&b[addr as usize..addr as usize + len + 1], b"7\0");
        assert!(b.len() <= needed_size(&args, &env, 0));
        let envp = read_u64(&b, 0x98) - layout.boot_info.base;
        assert_eq!(envp % 8, 0, "tables are 8-byte aligned");
    }

    #[test]
    fn too_many_arguments_are_refused() {
        let args = vec!["x".repeat(BOOT_INFO_SIZE as usize)];
        let err = check_size(&args, &[], 0).unwrap_err();
        assert!(matches!(err, BootInfoError::TooLarge { .. }));
    }
}
