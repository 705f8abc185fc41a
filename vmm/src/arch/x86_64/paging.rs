//! Identity-mapped 4-level page tables for Guest ABI v1.
//!
//! A `PageMap` says, per address range, whether and how it is mapped; the
//! builder turns it into tables, using 2 MiB pages wherever a whole aligned
//! 2 MiB block has one set of attributes and 4 KiB pages elsewhere.

use std::collections::BTreeMap;
use std::ops::Range;

const PAGE_4K: u64 = 0x1000;
const PAGE_2M: u64 = 0x20_0000;
const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// How a mapped page may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageAttr {
    pub user: bool,
    pub writable: bool,
    pub executable: bool,
    pub uncached: bool,
}

impl PageAttr {
    /// Guest data: user, writable, not executable.
    pub const DATA: PageAttr = PageAttr {
        user: true,
        writable: true,
        executable: false,
        uncached: false,
    };
    /// Guest read-only data.
    pub const READ_ONLY: PageAttr = PageAttr {
        user: true,
        writable: false,
        executable: false,
        uncached: false,
    };
    /// Device registers: user, writable, uncached, not executable.
    pub const DEVICE: PageAttr = PageAttr {
        user: true,
        writable: true,
        executable: false,
        uncached: true,
    };
    /// Structures only the CPU itself touches (GDT, TSS).
    pub const SYSTEM: PageAttr = PageAttr {
        user: false,
        writable: true,
        executable: false,
        uncached: false,
    };

    fn leaf_bits(self) -> u64 {
        let mut bits = PRESENT;
        if self.user {
            bits |= USER;
        }
        if self.writable {
            bits |= WRITABLE;
        }
        if !self.executable {
            bits |= NO_EXECUTE;
        }
        if self.uncached {
            bits |= CACHE_DISABLE | WRITE_THROUGH;
        }
        bits
    }
}

/// Non-overlapping page-aligned ranges and how each is mapped (`None`: not).
#[derive(Clone, Debug, Default)]
pub struct PageMap {
    /// start -> (end, attributes)
    ranges: BTreeMap<u64, (u64, Option<PageAttr>)>,
}

impl PageMap {
    /// Maps (or, with `None`, unmaps) `range`, replacing what was there.
    /// Both ends must be 4 KiB aligned.
    pub fn set(&mut self, range: Range<u64>, attr: Option<PageAttr>) {
        debug_assert!(range.start.is_multiple_of(PAGE_4K) && range.end.is_multiple_of(PAGE_4K));
        if range.is_empty() {
            return;
        }
        let overlapping: Vec<(u64, u64, Option<PageAttr>)> = self
            .ranges
            .range(..range.end)
            .filter(|(_, (end, _))| *end > range.start)
            .map(|(&s, &(e, a))| (s, e, a))
            .collect();
        for (start, end, old) in overlapping {
            self.ranges.remove(&start);
            if start < range.start {
                self.ranges.insert(start, (range.start, old));
            }
            if end > range.end {
                self.ranges.insert(range.end, (end, old));
            }
        }
        self.ranges.insert(range.start, (range.end, attr));
    }

    /// The attributes at `addr`.
    pub fn attr_at(&self, addr: u64) -> Option<PageAttr> {
        let (_, &(end, attr)) = self.ranges.range(..=addr).next_back()?;
        if addr < end {
            attr
        } else {
            None
        }
    }

    fn mapped(&self) -> impl Iterator<Item = (Range<u64>, PageAttr)> + '_ {
        self.ranges
            .iter()
            .filter_map(|(&s, &(e, a))| a.map(|a| (s..e, a)))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PagingError {
    #[error("page tables need more than the {0} pages reserved for them")]
    OutOfTablePages(u64),
}

/// Page tables ready to be written into guest memory.
pub struct PageTables {
    /// Guest-physical address of the PML4 (CR3).
    pub root: u64,
    /// Each table's guest-physical address and its 512 entries.
    pub tables: BTreeMap<u64, Box<[u64; 512]>>,
}

/// Builds tables for `map`, allocating them from `pool`.
pub fn build(map: &PageMap, pool: Range<u64>) -> Result<PageTables, PagingError> {
    let mut b = Builder {
        next: pool.start,
        pool,
        tables: BTreeMap::new(),
    };
    let root = b.alloc()?;
    for (range, attr) in map.mapped() {
        let mut addr = range.start;
        while addr < range.end {
            if addr.is_multiple_of(PAGE_2M) && range.end - addr >= PAGE_2M {
                let pd = b.walk(root, addr, 2)?;
                b.set(pd, addr >> 21, addr | attr.leaf_bits() | HUGE);
                addr += PAGE_2M;
            } else {
                let pt = b.walk(root, addr, 3)?;
                b.set(pt, addr >> 12, addr | attr.leaf_bits());
                addr += PAGE_4K;
            }
        }
    }
    Ok(PageTables {
        root,
        tables: b.tables,
    })
}

struct Builder {
    next: u64,
    pool: Range<u64>,
    tables: BTreeMap<u64, Box<[u64; 512]>>,
}

impl Builder {
    fn alloc(&mut self) -> Result<u64, PagingError> {
        if self.next >= self.pool.end {
            return Err(PagingError::OutOfTablePages(
                (self.pool.end - self.pool.start) / PAGE_4K,
            ));
        }
        let addr = self.next;
        self.next += PAGE_4K;
        self.tables.insert(addr, Box::new([0; 512]));
        Ok(addr)
    }

    fn set(&mut self, table: u64, index: u64, entry: u64) {
        if let Some(t) = self.tables.get_mut(&table) {
            t[(index & 511) as usize] = entry;
        }
    }

    /// Descends `depth` levels below the PML4 for `addr`, creating tables.
    fn walk(&mut self, root: u64, addr: u64, depth: u32) -> Result<u64, PagingError> {
        let mut table = root;
        for level in 0..depth {
            let index = ((addr >> (39 - 9 * level)) & 511) as usize;
            let entry = self.tables.get(&table).map_or(0, |t| t[index]);
            table = if entry & PRESENT != 0 {
                entry & ADDR_MASK
            } else {
                let child = self.alloc()?;
                self.set(table, index as u64, child | PRESENT | WRITABLE | USER);
                child
            };
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the built tables like the MMU does; returns the leaf entry.
    fn translate(pt: &PageTables, addr: u64) -> Option<u64> {
        let mut table = pt.root;
        for level in 0..4 {
            let entry = pt.tables[&table][((addr >> (39 - 9 * level)) & 511) as usize];
            if entry & PRESENT == 0 {
                return None;
            }
            if level == 3 || (level == 2 && entry & HUGE != 0) {
                return Some(entry);
            }
            table = entry & ADDR_MASK;
        }
        None
    }

    #[test]
    fn overlays_split_ranges() {
        let mut map = PageMap::default();
        map.set(0..0x40_0000, Some(PageAttr::DATA));
        map.set(0x20_0000..0x20_1000, Some(PageAttr::READ_ONLY));
        map.set(0..0x1000, None);
        assert_eq!(map.attr_at(0), None);
        assert_eq!(map.attr_at(0x20_0fff), Some(PageAttr::READ_ONLY));
        assert_eq!(map.attr_at(0x20_1000), Some(PageAttr::DATA));
        assert_eq!(map.attr_at(0x40_0000), None);
    }

    #[test]
    fn builds_an_identity_map_with_the_right_bits() {
        let mut map = PageMap::default();
        map.set(0..0x80_0000, Some(PageAttr::DATA));
        map.set(0..0x1000, None);
        map.set(
            0x20_0000..0x20_1000,
            Some(PageAttr {
                executable: true,
                ..PageAttr::READ_ONLY
            }),
        );
        map.set(0xD000_0000..0xD010_0000, Some(PageAttr::DEVICE));
        let pt = build(&map, 0x2_0000..0x10_0000).unwrap();
        assert_eq!(pt.root, 0x2_0000);
        assert_eq!(translate(&pt, 0), None);
        let code = translate(&pt, 0x20_0123).unwrap();
        assert_eq!(code & ADDR_MASK, 0x20_0000);
        assert_eq!(code & (WRITABLE | NO_EXECUTE | USER), USER);
        let big = translate(&pt, 0x60_0000).unwrap();
        assert_eq!(
            big & (HUGE | NO_EXECUTE | WRITABLE),
            HUGE | NO_EXECUTE | WRITABLE
        );
        let dev = translate(&pt, 0xD00F_F000).unwrap();
        assert_eq!(dev & ADDR_MASK, 0xD00F_F000);
        assert_ne!(dev & CACHE_DISABLE, 0);
        assert_eq!(translate(&pt, 0xD010_0000), None);
        assert_eq!(translate(&pt, 0x80_0000), None);
    }

    #[test]
    fn runs_out_of_table_pages_cleanly() {
        let mut map = PageMap::default();
        map.set(0..0x1000, Some(PageAttr::DATA));
        let err = build(&map, 0x2_0000..0x2_2000).err();
        assert_eq!(err, Some(PagingError::OutOfTablePages(2)));
    }
}
