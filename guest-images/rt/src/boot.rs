//! Safe access to the argv and environment strings in the boot info.
//!
//! Each table and string is checked to lie inside the boot-info area
//! (`BootInfo::size` bytes from the header, at most `BOOT_INFO_SIZE`), so a
//! malformed boot info yields missing strings, never a wild read.

use guest_abi::{BootInfo, StrRef, BOOT_INFO_SIZE};

/// The strings of one table (argv or the environment).
#[derive(Clone, Copy)]
pub struct Strings {
    area: &'static [u8],
    base: u64,
    table: u64,
    count: u64,
}

/// The argument strings; entry 0 is the image name the host gave.
pub fn argv(boot: &'static BootInfo) -> Strings {
    Strings::new(boot, boot.argv, boot.argc)
}

/// The environment strings, each "KEY=VALUE".
pub fn env(boot: &'static BootInfo) -> Strings {
    Strings::new(boot, boot.envp, boot.envc)
}

/// The boot-info area as bytes, or an empty slice if its header is invalid.
fn area(boot: &'static BootInfo) -> &'static [u8] {
    if !boot.is_valid() {
        return &[];
    }
    let header = core::mem::size_of::<BootInfo>();
    let size = (boot.size as usize).clamp(header, BOOT_INFO_SIZE as usize);
    // SAFETY: Guest ABI v1 maps the whole boot-info area (BOOT_INFO_SIZE
    // bytes from the header) readable and never changes it while the guest
    // runs; `size` is clamped to that area.
    unsafe { core::slice::from_raw_parts(boot as *const BootInfo as *const u8, size) }
}

impl Strings {
    fn new(boot: &'static BootInfo, table: u64, count: u64) -> Self {
        let area = area(boot);
        Strings {
            area,
            base: area.as_ptr() as u64,
            table,
            count: if area.is_empty() { 0 } else { count },
        }
    }

    /// Number of entries in the table.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes of entry `index` (without the NUL), or `None` if the entry
    /// or its string lies outside the boot-info area.
    pub fn get(&self, index: usize) -> Option<&'static [u8]> {
        if index as u64 >= self.count {
            return None;
        }
        let entry_size = core::mem::size_of::<StrRef>() as u64;
        let at = self.table.checked_add(index as u64 * entry_size)?;
        let raw = self.bytes(at, entry_size)?;
        let field = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap_or([0; 8]));
        self.bytes(field(0), field(8))
    }

    /// Iterates over the entries; an entry outside the area reads as empty.
    pub fn iter(&self) -> impl Iterator<Item = &'static [u8]> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or(&[]))
    }

    /// `len` bytes at guest address `addr`, if all inside the area.
    fn bytes(&self, addr: u64, len: u64) -> Option<&'static [u8]> {
        let start = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.area.get(start..end)
    }
}
