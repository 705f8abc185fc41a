//! Writes a checked image, its page tables, GDT and boot info into guest
//! memory, following the layout in `boot::layout`.

use guest_abi::PAGE_SIZE;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

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

fn write(mem: &GuestMemoryMmap, addr: u64, bytes: &[u8]) -> Result<(), LoadError> {
    mem.write_slice(bytes, GuestAddress(addr))
        .map_err(|source| LoadError::Write { addr, source })
}

/// Writes segments (bss zeroed), tables, GDT, TSS and `boot_info`.
pub fn load(
    mem: &GuestMemoryMmap,
    elf: &ElfImage,
    image: &[u8],
    layout: &Layout,
    boot_info: &[u8],
) -> Result<Loaded, LoadError> {
    for s in &elf.segments {
        let bytes = &image[s.file.clone()];
        write(mem, s.mem.start, bytes)?;
        let zero_len = (s.mem.end - s.mem.start) as usize - bytes.len();
        write(mem, s.mem.start + bytes.len() as u64, &vec![0u8; zero_len])?;
    }
    let page_map = page_map(elf, layout);
    let tables = paging::build(&page_map, layout::PAGE_TABLES)?;
    for (addr, table) in &tables.tables {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        write(mem, *addr, &bytes)?;
    }
    write(mem, GDT_ADDR, &gdt::table(TSS_ADDR))?;
    write(mem, TSS_ADDR, &gdt::tss_bytes())?;
    write(mem, layout.boot_info.base, boot_info)?;
    Ok(Loaded {
        page_table_root: tables.root,
        page_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::elf::Segment;

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
