//! A strict ELF64 reader for Guest ABI v1 images.
//!
//! The image is untrusted input: every offset, size and address is checked
//! before use, and each refusal names the segment at fault.

use std::ops::Range;

const EI_NIDENT: usize = 16;
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;

/// ELF machine numbers cordon knows by name.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// Whether `bytes` start like an ELF file (for recognising images by content).
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&ELF_MAGIC)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not a 64-bit little-endian ELF file")]
    WrongClass,
    #[error("ELF type ET_DYN (position-independent) is not supported: link a static ET_EXEC")]
    PositionIndependent,
    #[error("ELF type {0} is not an executable (ET_EXEC)")]
    NotExecutable(u16),
    #[error("ELF machine {found} is not this host's ({expected})")]
    WrongMachine { found: u16, expected: u16 },
    #[error("ELF program headers lie outside the file")]
    BadProgramHeaders,
    #[error("ELF file has no PT_LOAD segment")]
    NoSegments,
    #[error("segment {index}: file size {filesz:#x} exceeds memory size {memsz:#x}")]
    FileLargerThanMemory {
        index: usize,
        filesz: u64,
        memsz: u64,
    },
    #[error("segment {index}: its bytes at file offset {offset:#x} run past the end of the file (truncated image?)")]
    Truncated { index: usize, offset: u64 },
    #[error("segment {index}: virtual address {vaddr:#x} differs from physical {paddr:#x} (the identity map needs them equal)")]
    NotIdentity {
        index: usize,
        vaddr: u64,
        paddr: u64,
    },
    #[error("segment {index}: {start:#x}..{end:#x} is outside guest RAM usable by images")]
    OutsideRam { index: usize, start: u64, end: u64 },
    #[error("segment {index} overlaps segment {other}")]
    Overlap { index: usize, other: usize },
    #[error("entry point {0:#x} is outside every executable segment")]
    EntryOutside(u64),
}

/// A PT_LOAD segment, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index among the program headers, for messages.
    pub index: usize,
    /// Guest-physical address range it occupies in memory.
    pub mem: Range<u64>,
    /// Bytes of the file copied to the start of `mem`; the rest is zeroed.
    pub file: Range<usize>,
    pub flags: u32,
}

/// A checked image: where each segment goes and where to enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

impl ElfImage {
    /// First address past the highest segment.
    pub fn end(&self) -> u64 {
        self.segments.iter().map(|s| s.mem.end).max().unwrap_or(0)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Parses and checks `bytes`. `usable` are the guest-physical ranges a
/// segment may occupy; `machine` is the host's ELF machine number.
pub fn parse(bytes: &[u8], machine: u16, usable: &[Range<u64>]) -> Result<ElfImage, ElfError> {
    if bytes.len() < EI_NIDENT || !is_elf(bytes) {
        return Err(ElfError::NotElf);
    }
    if bytes.len() < EHDR_SIZE || bytes[4] != ELFCLASS64 || bytes[5] != ELFDATA2LSB {
        return Err(ElfError::WrongClass);
    }
    match u16_at(bytes, 16) {
        ET_EXEC => {}
        ET_DYN => return Err(ElfError::PositionIndependent),
        other => return Err(ElfError::NotExecutable(other)),
    }
    let found = u16_at(bytes, 18);
    if found != machine {
        return Err(ElfError::WrongMachine {
            found,
            expected: machine,
        });
    }
    let entry = u64_at(bytes, 24);
    let segments = load_segments(bytes, usable)?;
    let in_code = segments
        .iter()
        .any(|s| s.flags & PF_X != 0 && s.mem.contains(&entry));
    if !in_code {
        return Err(ElfError::EntryOutside(entry));
    }
    Ok(ElfImage { entry, segments })
}

fn program_headers(bytes: &[u8]) -> Result<impl Iterator<Item = &[u8]>, ElfError> {
    let phoff = usize::try_from(u64_at(bytes, 32)).map_err(|_| ElfError::BadProgramHeaders)?;
    let phentsize = usize::from(u16_at(bytes, 54));
    let phnum = usize::from(u16_at(bytes, 56));
    if phentsize < PHDR_SIZE {
        return Err(ElfError::BadProgramHeaders);
    }
    let table_end = phentsize
        .checked_mul(phnum)
        .and_then(|len| len.checked_add(phoff))
        .ok_or(ElfError::BadProgramHeaders)?;
    if table_end > bytes.len() {
        return Err(ElfError::BadProgramHeaders);
    }
    Ok((0..phnum).map(move |i| &bytes[phoff + i * phentsize..phoff + i * phentsize + PHDR_SIZE]))
}

fn load_segments(bytes: &[u8], usable: &[Range<u64>]) -> Result<Vec<Segment>, ElfError> {
    let mut segments: Vec<Segment> = Vec::new();
    for (index, ph) in program_headers(bytes)?.enumerate() {
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let segment = check_segment(index, ph, bytes.len(), usable)?;
        if segment.mem.is_empty() {
            continue;
        }
        if let Some(other) = segments
            .iter()
            .find(|s| s.mem.start < segment.mem.end && segment.mem.start < s.mem.end)
        {
            return Err(ElfError::Overlap {
                index,
                other: other.index,
            });
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    Ok(segments)
}

fn check_segment(
    index: usize,
    ph: &[u8],
    file_len: usize,
    usable: &[Range<u64>],
) -> Result<Segment, ElfError> {
    let flags = u32_at(ph, 4);
    let offset = u64_at(ph, 8);
    let vaddr = u64_at(ph, 16);
    let paddr = u64_at(ph, 24);
    let filesz = u64_at(ph, 32);
    let memsz = u64_at(ph, 40);
    if filesz > memsz {
        return Err(ElfError::FileLargerThanMemory {
            index,
            filesz,
            memsz,
        });
    }
    let file_end = offset
        .checked_add(filesz)
        .filter(|&end| end <= file_len as u64)
        .ok_or(ElfError::Truncated { index, offset })?;
    if vaddr != paddr {
        return Err(ElfError::NotIdentity {
            index,
            vaddr,
            paddr,
        });
    }
    let end = paddr.checked_add(memsz).ok_or(ElfError::OutsideRam {
        index,
        start: paddr,
        end: u64::MAX,
    })?;
    if !usable.iter().any(|r| r.start <= paddr && end <= r.end) {
        return Err(ElfError::OutsideRam {
            index,
            start: paddr,
            end,
        });
    }
    // Both fit in usize: `file_end <= file_len`.
    Ok(Segment {
        index,
        mem: paddr..end,
        file: offset as usize..file_end as usize,
        flags,
    })
}

#[cfg(test)]
mod tests;
