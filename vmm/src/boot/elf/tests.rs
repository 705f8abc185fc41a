use super::*;

/// (flags, offset, vaddr, paddr, filesz, memsz)
type Ph = (u32, u64, u64, u64, u64, u64);

fn image(e_type: u16, machine: u16, entry: u64, phs: &[Ph], file_len: usize) -> Vec<u8> {
    let mut b = vec![0u8; file_len.max(EHDR_SIZE + PHDR_SIZE * phs.len())];
    b[..4].copy_from_slice(&ELF_MAGIC);
    b[4] = ELFCLASS64;
    b[5] = ELFDATA2LSB;
    b[16..18].copy_from_slice(&e_type.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
    b[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for (i, &(flags, offset, vaddr, paddr, filesz, memsz)) in phs.iter().enumerate() {
        let at = EHDR_SIZE + i * PHDR_SIZE;
        b[at..at + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        for (k, v) in [offset, vaddr, paddr, filesz, memsz].iter().enumerate() {
            let f = at + 8 + k * 8;
            b[f..f + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

#[allow(clippy::single_range_in_vec_init)]
const RAM: &[Range<u64>] = &[0x10_0000..0x400_0000];
const TEXT: Ph = (PF_X | 4, 0x1000, 0x20_0000, 0x20_0000, 0x100, 0x100);
const DATA: Ph = (PF_W | 4, 0x1100, 0x20_1000, 0x20_1000, 0x10, 0x2000);

fn parse_one(bytes: &[u8]) -> Result<ElfImage, ElfError> {
    parse(bytes, EM_X86_64, RAM)
}

#[test]
fn accepts_a_static_executable() {
    let img = parse_one(&image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT, DATA], 0x2000)).unwrap();
    assert_eq!(img.entry, 0x20_0010);
    assert_eq!(img.segments.len(), 2);
    assert_eq!(img.segments[1].mem, 0x20_1000..0x20_3000);
    assert_eq!(img.segments[1].file, 0x1100..0x1110);
    assert_eq!(img.end(), 0x20_3000);
}

#[test]
fn refuses_what_is_not_a_static_executable() {
    assert_eq!(parse_one(b"\0asm\x01\0\0\0"), Err(ElfError::NotElf));
    let dyn_img = image(ET_DYN, EM_X86_64, 0x20_0010, &[TEXT], 0x2000);
    assert_eq!(parse_one(&dyn_img), Err(ElfError::PositionIndependent));
    let arm = image(ET_EXEC, EM_AARCH64, 0x20_0010, &[TEXT], 0x2000);
    assert!(matches!(
        parse_one(&arm),
        Err(ElfError::WrongMachine { found: 183, .. })
    ));
    let mut elf32 = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT], 0x2000);
    elf32[4] = 1;
    assert_eq!(parse_one(&elf32), Err(ElfError::WrongClass));
    assert_eq!(parse_one(&elf32[..20]), Err(ElfError::WrongClass));
}

#[test]
fn refuses_bad_segments_by_index() {
    let truncated = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT], 0x1050);
    assert!(matches!(
        parse_one(&truncated),
        Err(ElfError::Truncated { index: 0, .. })
    ));
    let outside = (4, 0, 0x8000_0000, 0x8000_0000, 0, 0x1000);
    let img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT, outside], 0x2000);
    assert!(matches!(
        parse_one(&img),
        Err(ElfError::OutsideRam { index: 1, .. })
    ));
    let low = (4, 0, 0x1000, 0x1000, 0, 0x1000);
    let img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[low, TEXT], 0x2000);
    assert!(matches!(
        parse_one(&img),
        Err(ElfError::OutsideRam { index: 0, .. })
    ));
    let overlapping = (4, 0, 0x20_0080, 0x20_0080, 0, 0x100);
    let img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT, overlapping], 0x2000);
    assert_eq!(
        parse_one(&img),
        Err(ElfError::Overlap { index: 1, other: 0 })
    );
    let wrap = (4, 0, u64::MAX - 1, u64::MAX - 1, 0, 0x10);
    let img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT, wrap], 0x2000);
    assert!(matches!(
        parse_one(&img),
        Err(ElfError::OutsideRam { index: 1, .. })
    ));
    let big_file = (4, 0, 0x30_0000, 0x30_0000, 0x20, 0x10);
    let img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT, big_file], 0x2000);
    assert!(matches!(
        parse_one(&img),
        Err(ElfError::FileLargerThanMemory { index: 1, .. })
    ));
    let moved = (4, 0, 0x40_0000, 0x30_0000, 0, 0x10);
    let img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT, moved], 0x2000);
    assert!(matches!(
        parse_one(&img),
        Err(ElfError::NotIdentity { index: 1, .. })
    ));
}

#[test]
fn refuses_an_entry_outside_code() {
    let img = image(ET_EXEC, EM_X86_64, 0x20_1000, &[TEXT, DATA], 0x2000);
    assert_eq!(parse_one(&img), Err(ElfError::EntryOutside(0x20_1000)));
    assert_eq!(
        parse_one(&image(ET_EXEC, EM_X86_64, 0, &[], 0x100)),
        Err(ElfError::NoSegments)
    );
}

#[test]
fn refuses_program_headers_past_the_end() {
    let mut img = image(ET_EXEC, EM_X86_64, 0x20_0010, &[TEXT], 0x2000);
    img[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(parse_one(&img), Err(ElfError::BadProgramHeaders));
}
