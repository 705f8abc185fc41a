//! Where things go in guest memory under Guest ABI v1.
//!
//! ```text
//! 0x0000_0000  null page (unmapped)
//! 0x0000_1000  GDT (supervisor-only)
//! 0x0000_2000  TSS and its I/O permission bitmap (supervisor-only)
//! 0x0001_0000  boot info (read-only)
//! 0x0002_0000  page tables (supervisor-only)
//! 0x0010_0000  image segments, then free memory
//!      ...     per vCPU, from the top of low RAM down: stack, guard page below it
//! 0xC000_0000  end of low RAM
//! 0xD000_0000  device window (uncached)
//! 0x1_0000_0000  the rest of RAM, if any
//! ```

use std::ops::Range;

use guest_abi::{
    MemRange, BOOT_INFO_ADDR, BOOT_INFO_SIZE, DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE,
    HIGH_RAM_BASE, IMAGE_MIN_ADDR, LOW_RAM_END, PAGE_SIZE, STACK_SIZE,
};

/// The GDT's page.
pub const GDT_ADDR: u64 = 0x1000;
/// The TSS with its I/O permission bitmap (three pages).
pub const TSS_ADDR: u64 = 0x2000;
/// Page tables are allocated from this range.
pub const PAGE_TABLES: Range<u64> = 0x2_0000..IMAGE_MIN_ADDR;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("the module ({len} bytes) does not fit in the {free} bytes of guest memory left after the runtime and the stacks: give the guest more memory (--mem)")]
    ModuleTooLarge { len: u64, free: u64 },
    #[error("the image ends at {image_end:#x}, but the stacks of {vcpus} vCPU(s) start at {stacks:#x}: give the guest more memory")]
    NoRoomForStacks {
        image_end: u64,
        stacks: u64,
        vcpus: u32,
    },
}

/// Guest RAM ranges for `mem_bytes` of memory.
pub fn ram_ranges(mem_bytes: u64) -> Vec<MemRange> {
    let low = mem_bytes.min(LOW_RAM_END);
    let mut ranges = vec![MemRange { base: 0, size: low }];
    if mem_bytes > low {
        ranges.push(MemRange {
            base: HIGH_RAM_BASE,
            size: mem_bytes - low,
        });
    }
    ranges
}

/// Ranges an image segment may occupy.
pub fn image_ranges(ram: &[MemRange]) -> Vec<Range<u64>> {
    ram.iter()
        .map(|r| r.base.max(IMAGE_MIN_ADDR)..r.end())
        .filter(|r| r.start < r.end)
        .collect()
}

/// One vCPU's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    /// The initial RSP.
    pub top: u64,
    /// The unmapped page right below the stack.
    pub guard: u64,
}

/// The complete placement for one boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub ram: Vec<MemRange>,
    pub device_window: MemRange,
    pub boot_info: MemRange,
    pub stacks: Vec<Stack>,
    pub free: MemRange,
    /// A module (the Wasm bytes) at the start of what was free; empty if
    /// none was placed.
    pub module: MemRange,
}

impl Layout {
    /// Places stacks at the top of low RAM and the free range between the
    /// image's end and the lowest guard page.
    pub fn new(mem_bytes: u64, vcpus: u32, image_end: u64) -> Result<Layout, LayoutError> {
        let ram = ram_ranges(mem_bytes);
        let low_top = ram[0].end() & !(PAGE_SIZE - 1);
        let per_stack = STACK_SIZE + PAGE_SIZE;
        let stacks: Vec<Stack> = (0..u64::from(vcpus))
            .map(|i| {
                let top = low_top.saturating_sub(i * per_stack);
                Stack {
                    top,
                    guard: top.saturating_sub(per_stack),
                }
            })
            .collect();
        let lowest = low_top.saturating_sub(u64::from(vcpus) * per_stack);
        let free_start = align_up(image_end.max(IMAGE_MIN_ADDR));
        // An image in high RAM leaves all low RAM above IMAGE_MIN_ADDR free.
        let free_start = if free_start > low_top {
            IMAGE_MIN_ADDR
        } else {
            free_start
        };
        if lowest < free_start || lowest < IMAGE_MIN_ADDR {
            return Err(LayoutError::NoRoomForStacks {
                image_end,
                stacks: lowest,
                vcpus,
            });
        }
        Ok(Layout {
            ram,
            device_window: MemRange {
                base: DEVICE_WINDOW_BASE,
                size: DEVICE_WINDOW_SIZE,
            },
            boot_info: MemRange {
                base: BOOT_INFO_ADDR,
                size: BOOT_INFO_SIZE,
            },
            stacks,
            free: MemRange {
                base: free_start,
                size: lowest - free_start,
            },
            module: MemRange::default(),
        })
    }

    /// Places a module of `len` bytes at the start of the free range, which
    /// then begins at the next page after it.
    pub fn place_module(&mut self, len: u64) -> Result<MemRange, LayoutError> {
        let taken = align_up(len);
        if taken > self.free.size {
            return Err(LayoutError::ModuleTooLarge {
                len,
                free: self.free.size,
            });
        }
        self.module = MemRange {
            base: self.free.base,
            size: len,
        };
        self.free = MemRange {
            base: self.free.base + taken,
            size: self.free.size - taken,
        };
        Ok(self.module)
    }

    /// Which vCPU's guard page holds `addr`, if any.
    pub fn guard_owner(&self, addr: u64) -> Option<usize> {
        self.stacks
            .iter()
            .position(|s| (s.guard..s.guard + PAGE_SIZE).contains(&addr))
    }
}

/// Rounds up to a page boundary.
pub fn align_up(addr: u64) -> u64 {
    addr.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_guest_has_one_ram_range_and_stacks_at_the_top() {
        let l = Layout::new(64 << 20, 2, 0x20_3000).unwrap();
        assert_eq!(
            l.ram,
            vec![MemRange {
                base: 0,
                size: 64 << 20
            }]
        );
        assert_eq!(l.stacks[0].top, 64 << 20);
        assert_eq!(l.stacks[0].guard, (64 << 20) - STACK_SIZE - PAGE_SIZE);
        assert_eq!(l.stacks[1].top, l.stacks[0].guard);
        assert_eq!(l.free.base, 0x20_3000);
        assert_eq!(l.free.end(), l.stacks[1].guard);
        assert_eq!(l.guard_owner(l.stacks[1].guard + 8), Some(1));
        assert_eq!(l.guard_owner(l.stacks[1].top - 8), None);
    }

    #[test]
    fn large_guest_continues_above_4g() {
        let ram = ram_ranges(4 << 30);
        assert_eq!(
            ram[1],
            MemRange {
                base: HIGH_RAM_BASE,
                size: (4 << 30) - LOW_RAM_END
            }
        );
        assert_eq!(image_ranges(&ram)[0], IMAGE_MIN_ADDR..LOW_RAM_END);
    }

    #[test]
    fn too_little_memory_is_refused() {
        let err = Layout::new(2 << 20, 8, 0x20_3000).unwrap_err();
        assert!(matches!(err, LayoutError::NoRoomForStacks { vcpus: 8, .. }));
    }
}
