//! Writes a checked image, its page tables, GDT and boot info into guest
//! memory, following the layout in `boot::layout`.

use guest_abi::PAGE_SIZE;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::arch::x86_64::paging::{PageAttr, PageMap};
use crate::arch::x86_64::{gdt, paging};
use crate::boot::elf::{ElfImage, PF_W, PF_X};
use crate::boot::layout::{self, Layout, GDT_ADDR, TSS_ADDR};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot write guest memory at {addr:#x}")]
    Write {
        addr: u64,
        source: vm_memory::GuestMemoryError,
    },
    #[error(transparent)]
    Paging(#[from] paging::PagingError),
}

/// What the vCPUs need from a loaded image.
pub struct Loaded {
    pub page_table_root: u64,
    pub page_map: PageMap,
}

/// The attributes every page gets: see `docs/guest-abi.md`, "Paging".
pub fn page_map(elf: &ElfImage, layout: &Layout) -> PageMap {
    let mut map = PageMap::default();
    for r in &layout.ram {
        let start = r.base.max(guest_abi::IMAGE_MIN_ADDR);
        if start < r.end() {
            map.set(start..r.end() & !(PAGE_SIZE - 1), Some(PageAttr::DATA));
        }
    }
    map.set(GDT_ADDR..GDT_ADDR + PAGE_SIZE, Some(PageAttr::SYSTEM));
    let tss_end = layout::align_up(TSS_ADDR + gdt::TSS_SIZE);
    map.set(TSS_ADDR..tss_end, Some(PageAttr::SYSTEM));
    let bi = layout.boot_info;
    map.set(bi.base..bi.end(), Some(PageAttr::READ_ONLY));
    for s in &elf.segments {
        let mut page = s.mem.start & !(PAGE_SIZE - 1);
        while page < s.mem.end {
            // Pages shared by two segments get the union of their rights.
            let (mut w, mut x) = (s.flags & PF_W != 0, s.flags & PF_X != 0);
            for other in &elf.segments {
                if other.mem.start < page + PAGE_SIZE && page < other.mem.end {
                    w |= other.flags & PF_W != 0;
                    x |= other.flags & PF_X != 0;
                }
            }
            let attr = PageAttr {
                writable: w,
                executable: x,
                ..PageAttr::DATA
            };
            map.set(page..page + PAGE_SIZE, Some(attr));
            page += PAGE_SIZE;
        }
    }
    for stack in &layout.stacks {
        map.set(stack.guard..stack.guard + PAGE_SIZE, None);
    }
    let dw = layout.device_window;
    map.set(dw.base..dw.end(), Some(PageAttr::DEVICE));
    map
}

/// Guest memory as the loader finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Known to be all zero (a fresh memfd): zero bytes need no writing, and
    /// not touching a page saves a page fault.
    Fresh,
    /// May hold anything (a reload): every byte is written.
    Used,
}

/// Writes `bytes` at `addr`, skipping whole zero pages of fresh memory.
fn write(mem: &GuestMemoryMmap, state: Memory, addr: u64, bytes: &[u8]) -> Result<(), LoadError> {
    let mut at = 0;
    while at < bytes.len() {
        let page_end = ((addr + at as u64) | (PAGE_SIZE - 1)) + 1;
        let end = bytes.len().min(at + (page_end - addr - at as u64) as usize);
        let chunk = &bytes[at..end];
        if state == Memory::Used || chunk.iter().any(|&b| b != 0) {
            let to = addr + at as u64;
            mem.write_slice(chunk, GuestAddress(to))
                .map_err(|source| LoadError::Write { addr: to, source })?;
        }
        at = end;
    }
    Ok(())
}

/// Asks the kernel to allocate the pages of `len` bytes at `addr` in one
/// call (MADV_POPULATE_WRITE) instead of one page fault per page, which is
/// what the copy would otherwise take: ~4 us each where the host is itself
/// a VM. Only a speed-up: if the kernel refuses, the copy faults them in.
fn populate(mem: &GuestMemoryMmap, addr: u64, len: u64) {
    let start = addr & !(PAGE_SIZE - 1);
    let end = layout::align_up(addr + len);
    let Ok(host) = mem.get_slice(GuestAddress(start), (end - start) as usize) else {
        return;
    };
    // SAFETY: the range is inside one mapped guest memory region (get_slice
    // checked it) and page-aligned; MADV_POPULATE_WRITE only faults pages in
    // and changes no contents or mappings.
    let rc = unsafe {
        libc::madvise(
            host.ptr_guard_mut().as_ptr().cast(),
            host.len(),
            libc::MADV_POPULATE_WRITE,
        )
    };
    if rc != 0 {
        log::debug!(
            "MADV_POPULATE_WRITE refused: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Writes segments (bss zeroed), tables, GDT, TSS and `boot_info`.
pub fn load(
    mem: &GuestMemoryMmap,
    elf: &ElfImage,
    image: &[u8],
    layout: &Layout,
    boot_info: &[u8],
    module: &[u8],
    state: Memory,
) -> Result<Loaded, LoadError> {
    for s in &elf.segments {
        populate(mem, s.mem.start, s.file.len() as u64);
        let bytes = &image[s.file.clone()];
        write(mem, state, s.mem.start, bytes)?;
        let zero_len = (s.mem.end - s.mem.start) as usize - bytes.len();
        write(
            mem,
            state,
            s.mem.start + bytes.len() as u64,
            &vec![0u8; zero_len],
        )?;
    }
    let page_map = page_map(elf, layout);
    let tables = paging::build(&page_map, layout::PAGE_TABLES)?;
    for (addr, table) in &tables.tables {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        write(mem, state, *addr, &bytes)?;
    }
    write(mem, state, GDT_ADDR, &gdt::table(TSS_ADDR))?;
    write(mem, state, TSS_ADDR, &gdt::tss_bytes())?;
    write(mem, state, layout.boot_info.base, boot_info)?;
    write(mem, state, layout.module.base, module)?;
    Ok(Loaded {
        page_table_root: tables.root,
        page_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::elf::Segment;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x4000)]).unwrap()
    }

    #[test]
    fn fresh_memory_skips_zero_pages_used_memory_does_not() {
        let mut bytes = vec![0u8; 0x2800];
        bytes[0x10] = 1;
        bytes[0x27ff] = 2;
        for state in [Memory::Fresh, Memory::Used] {
            let mem = memory();
            mem.write_slice(&[0xaa; 0x4000], GuestAddress(0)).unwrap();
            write(&mem, state, 0x800, &bytes).unwrap();
            let mut back = vec![0u8; 0x2800];
            mem.read_slice(&mut back, GuestAddress(0x800)).unwrap();
            // The first partial page and the last one are written either way.
            assert_eq!(back[0x10], 1);
            assert_eq!(back[0x27ff], 2);
            assert_eq!(back[0x7ff], 0);
            // The all-zero page in the middle (0x1000..0x2000) is written
            // only to used memory.
            let middle = back[0x800];
            assert_eq!(middle, if state == Memory::Fresh { 0xaa } else { 0 });
        }
    }

    #[test]
    fn pages_get_their_segment_rights_and_guards_are_unmapped() {
        let elf = ElfImage {
            entry: 0x20_0000,
            segments: vec![
                Segment {
                    index: 0,
                    mem: 0x20_0000..0x20_0800,
                    file: 0..0,
                    flags: PF_X,
                },
                Segment {
                    index: 1,
                    mem: 0x20_0800..0x20_1800,
                    file: 0..0,
                    flags: PF_W,
                },
            ],
        };
        let layout = Layout::new(64 << 20, 1, elf.end()).unwrap();
        let map = page_map(&elf, &layout);
        let shared = map.attr_at(0x20_0000).unwrap();
        assert!(shared.writable && shared.executable);
        let data = map.attr_at(0x20_1000).unwrap();
        assert!(data.writable && !data.executable);
        assert_eq!(map.attr_at(0), None);
        assert_eq!(map.attr_at(layout.stacks[0].guard), None);
        assert_eq!(map.attr_at(layout.stacks[0].top - 8), Some(PageAttr::DATA));
        assert_eq!(
            map.attr_at(layout.boot_info.base),
            Some(PageAttr::READ_ONLY)
        );
        assert!(!map.attr_at(GDT_ADDR).unwrap().user);
        assert_eq!(map.attr_at(layout::PAGE_TABLES.start), None);
    }
}
