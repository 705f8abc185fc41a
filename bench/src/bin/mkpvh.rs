//! Writes the minimal guests for the QEMU peer in `bench/run.sh`: they exit
//! at once through `-device isa-debug-exit,iobase=0xf4,iosize=4`, optionally
//! after N 32-bit writes to port 0x80 (N exits to QEMU).
//!
//! - default: an ELF64 (ET_EXEC, x86_64) with a PVH note, for `-kernel`.
//!   The firmware (qboot on microvm) enters it in 32-bit protected mode,
//!   ring 0, paging off.
//! - `--firmware`: a 64 KiB firmware image for `-bios`, entered at the reset
//!   vector in real mode: no firmware runs before it.

use std::error::Error;

use argh::FromArgs;

/// Write a minimal QEMU guest that exits through port 0xF4.
#[derive(FromArgs)]
struct Args {
    /// where to write the image
    #[argh(option)]
    out: String,
    /// make N 32-bit writes to port 0x80 before exiting
    #[argh(option, default = "0")]
    port_writes: u32,
    /// the value written to port 0xF4 (QEMU then exits with 2 * S + 1)
    #[argh(option, default = "0")]
    status: u8,
    /// write a firmware image (for -bios) instead of a PVH ELF
    #[argh(switch)]
    firmware: bool,
    /// halt forever instead of exiting (`cli; hlt`), to measure memory
    #[argh(switch)]
    hold: bool,
}

/// Where the ELF is loaded (1 MiB, like a Linux kernel).
const LOAD_ADDR: u64 = 0x10_0000;
/// XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point.
const NOTE_PVH_ENTRY: u32 = 18;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const NOTE_SIZE: usize = 12 + 4 + 8; // header, "Xen\0", the 8-byte entry
const CODE_OFFSET: usize = EHDR_SIZE + 2 * PHDR_SIZE + NOTE_SIZE;
const FIRMWARE_SIZE: usize = 0x1_0000; // QEMU wants a multiple of 64 KiB
const RESET_OFFSET: usize = 0xfff0; // the reset vector, 16 bytes below 4 GiB

/// 32-bit code: with N > 0, `mov ecx,N; mov dx,0x80; 1: jecxz 2f;
/// out dx,eax; dec ecx; jmp 1b; 2:` then `mov dx,0xf4; mov eax,S;
/// out dx,eax; jmp $`.
fn code32(n: u32, status: u8) -> Vec<u8> {
    let mut code = Vec::new();
    if n > 0 {
        code.push(0xb9);
        code.extend_from_slice(&n.to_le_bytes());
        code.extend_from_slice(&[0x66, 0xba, 0x80, 0x00, 0xe3, 0x04, 0xef, 0x49, 0xeb, 0xfa]);
    }
    code.extend_from_slice(&[
        0x66, 0xba, 0xf4, 0x00, 0xb8, status, 0, 0, 0, 0xef, 0xeb, 0xfe,
    ]);
    code
}

/// The same in real mode (operand- and address-size prefixes for ECX), the
/// exit a byte write: `mov dx,0xf4; mov al,S; out dx,al; jmp $`.
fn code16(n: u32, status: u8) -> Vec<u8> {
    let mut code = Vec::new();
    if n > 0 {
        code.extend_from_slice(&[0x66, 0xb9]);
        code.extend_from_slice(&n.to_le_bytes());
        code.extend_from_slice(&[
            0xba, 0x80, 0x00, 0x67, 0xe3, 0x06, 0x66, 0xef, 0x66, 0x49, 0xeb, 0xf7,
        ]);
    }
    code.extend_from_slice(&[0xba, 0xf4, 0x00, 0xb0, status, 0xee, 0xeb, 0xfe]);
    code
}

fn put(buf: &mut Vec<u8>, fields: &[(u64, usize)]) {
    for &(value, size) in fields {
        buf.extend_from_slice(&value.to_le_bytes()[..size]);
    }
}

/// ELF header, PT_LOAD of the whole file at LOAD_ADDR, PT_NOTE, note, code.
fn pvh_elf(code: &[u8]) -> Vec<u8> {
    let total = (CODE_OFFSET + code.len()) as u64;
    let entry = LOAD_ADDR + CODE_OFFSET as u64;
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec(); // 64-bit, little-endian, v1
    elf.resize(16, 0);
    put(
        &mut elf,
        &[
            (2, 2),                // e_type: ET_EXEC
            (62, 2),               // e_machine: EM_X86_64
            (1, 4),                // e_version
            (entry, 8),            // e_entry (unused by PVH)
            (EHDR_SIZE as u64, 8), // e_phoff
            (0, 8),                // e_shoff
            (0, 4),                // e_flags
            (EHDR_SIZE as u64, 2), // e_ehsize
            (PHDR_SIZE as u64, 2), // e_phentsize
            (2, 2),                // e_phnum
            (64, 2),               // e_shentsize
            (0, 2),                // e_shnum
            (0, 2),                // e_shstrndx
        ],
    );
    let note_offset = (EHDR_SIZE + 2 * PHDR_SIZE) as u64;
    // PT_LOAD, R+X: (type, flags, offset, vaddr, paddr, filesz, memsz, align)
    let load = [1, 5, 0, LOAD_ADDR, LOAD_ADDR, total, total, 0x1000];
    let note = [
        4,
        4,
        note_offset,
        0,
        0,
        NOTE_SIZE as u64,
        NOTE_SIZE as u64,
        4,
    ];
    for phdr in [load, note] {
        let sizes = [4, 4, 8, 8, 8, 8, 8, 8];
        put(&mut elf, &phdr.into_iter().zip(sizes).collect::<Vec<_>>());
    }
    put(&mut elf, &[(4, 4), (8, 4), (u64::from(NOTE_PVH_ENTRY), 4)]);
    elf.extend_from_slice(b"Xen\0");
    put(&mut elf, &[(entry, 8)]);
    assert_eq!(elf.len(), CODE_OFFSET);
    elf.extend_from_slice(code);
    elf
}

/// Code at offset 0 (CS base 0xffff0000, so address 0xffff0000) and a
/// `jmp near` to it at the reset vector.
fn firmware(code: &[u8]) -> Vec<u8> {
    let mut rom = vec![0xf4u8; FIRMWARE_SIZE]; // hlt everywhere else
    rom[..code.len()].copy_from_slice(code);
    let after_jmp = (RESET_OFFSET + 3) as u16;
    let rel = 0u16.wrapping_sub(after_jmp).to_le_bytes();
    rom[RESET_OFFSET..RESET_OFFSET + 3].copy_from_slice(&[0xe9, rel[0], rel[1]]);
    rom
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Args = argh::from_env();
    let image = if args.hold {
        let code = [0xfa, 0xf4, 0xeb, 0xfd]; // cli; 1: hlt; jmp 1b
        if args.firmware {
            firmware(&code)
        } else {
            pvh_elf(&code)
        }
    } else if args.firmware {
        firmware(&code16(args.port_writes, args.status))
    } else {
        pvh_elf(&code32(args.port_writes, args.status))
    };
    std::fs::write(&args.out, image)?;
    Ok(())
}
