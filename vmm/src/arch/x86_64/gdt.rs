//! The GDT, the TSS and the segment registers of Guest ABI v1's CPL3 entry.

use kvm_bindings::{kvm_dtable, kvm_segment};

/// Selector of the 64-bit code segment, DPL 3 (RPL 3).
pub const USER_CODE: u16 = 0x20 | 3;
/// Selector of the data segment, DPL 3 (RPL 3).
pub const USER_DATA: u16 = 0x18 | 3;
/// Selector of the 64-bit TSS.
pub const TSS: u16 = 0x28;
/// The TSS proper is 0x68 bytes; the I/O permission bitmap follows it.
const TSS_HEADER: u32 = 0x68;
/// One bit per port, all clear (allowed), then the mandatory 0xFF byte.
const IO_BITMAP: u32 = 0x2000 + 1;
const TSS_LIMIT: u32 = TSS_HEADER + IO_BITMAP - 1;
/// Bytes the TSS occupies in guest memory.
pub const TSS_SIZE: u64 = (TSS_LIMIT + 1) as u64;

const TYPE_CODE_EXEC_READ_ACCESSED: u8 = 0xb;
const TYPE_DATA_RW_ACCESSED: u8 = 0x3;
const TYPE_TSS_BUSY: u8 = 0xb;

fn descriptor(s: &kvm_segment) -> u64 {
    let base = s.base;
    let limit = u64::from(s.limit >> if s.g != 0 { 12 } else { 0 });
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (u64::from(s.type_) << 40)
        | (u64::from(s.s) << 44)
        | (u64::from(s.dpl) << 45)
        | (u64::from(s.present) << 47)
        | (((limit >> 16) & 0xf) << 48)
        | (u64::from(s.avl) << 52)
        | (u64::from(s.l) << 53)
        | (u64::from(s.db) << 54)
        | (u64::from(s.g) << 55)
        | (((base >> 24) & 0xff) << 56)
}

/// The CPL3 64-bit code segment.
pub fn code_segment() -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_CODE,
        type_: TYPE_CODE_EXEC_READ_ACCESSED,
        present: 1,
        dpl: 3,
        s: 1,
        l: 1,
        g: 1,
        ..Default::default()
    }
}

/// The CPL3 data segment (SS, DS, ES, FS, GS).
pub fn data_segment() -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_DATA,
        type_: TYPE_DATA_RW_ACCESSED,
        present: 1,
        dpl: 3,
        s: 1,
        db: 1,
        g: 1,
        ..Default::default()
    }
}

/// The busy 64-bit TSS at `tss_addr`.
pub fn task_segment(tss_addr: u64) -> kvm_segment {
    kvm_segment {
        base: tss_addr,
        limit: TSS_LIMIT,
        selector: TSS,
        type_: TYPE_TSS_BUSY,
        present: 1,
        ..Default::default()
    }
}

/// The GDT's bytes: null, two unused kernel slots, user data, user code, TSS.
pub fn table(tss_addr: u64) -> Vec<u8> {
    let tss = task_segment(tss_addr);
    let entries = [
        0,
        0,
        0,
        descriptor(&data_segment()),
        descriptor(&code_segment()),
        descriptor(&tss),
        tss_addr >> 32,
    ];
    entries.iter().flat_map(|e| e.to_le_bytes()).collect()
}

/// The GDTR value for `table` at `gdt_addr`.
pub fn gdtr(gdt_addr: u64) -> kvm_dtable {
    kvm_dtable {
        base: gdt_addr,
        limit: (7 * 8 - 1) as u16,
        ..Default::default()
    }
}

/// TSS bytes: zero, with an I/O permission bitmap that allows every port.
///
/// IOPL 3 should be enough for CPL3 port access, and is on VMX/SVM; but
/// kvm_pvm does not honour the guest's IOPL (the guest reads RFLAGS 0x202)
/// and decides by the bitmap alone, so the bitmap must allow the ports.
/// Ports no device claims still exit to the vm process and are counted.
pub fn tss_bytes() -> Vec<u8> {
    let mut tss = vec![0u8; TSS_SIZE as usize];
    tss[0x66..0x68].copy_from_slice(&(TSS_HEADER as u16).to_le_bytes());
    tss[TSS_LIMIT as usize] = 0xff;
    tss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_hand_encoded_values() {
        // 64-bit code, DPL 3, present, accessed: the classic 0x00affb000000ffff.
        assert_eq!(descriptor(&code_segment()), 0x00af_fb00_0000_ffff);
        // Data, DPL 3, writable, accessed: 0x00cff3000000ffff.
        assert_eq!(descriptor(&data_segment()), 0x00cf_f300_0000_ffff);
        let gdt = table(0x1800);
        assert_eq!(gdt.len(), 56);
        assert_eq!(usize::from(gdtr(0x1000).limit) + 1, gdt.len());
        let tss = tss_bytes();
        assert_eq!(u16::from_le_bytes([tss[0x66], tss[0x67]]), 0x68);
        assert!(tss[0x68..tss.len() - 1].iter().all(|&b| b == 0));
        assert_eq!(tss.last(), Some(&0xff));
    }
}
