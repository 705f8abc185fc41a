//! What a guest in the Guest ABI v1 entry state sees on this host's KVM.
//!
//! Each probe is a fresh `bench::MiniVm` running a few instructions that
//! leave a value in EAX, followed by `TAIL`, which reports EAX with
//! `out 0x81, eax` and exits through port 0xF4. The table shows the port
//! writes seen (or the exit that ended the guest early), the wall time of
//! the run and what hardware (VMX/SVM) KVM gives. Run it on a new host before
//! trusting the floor or cordon there: `target/release/probe [-v]`.

use std::time::{Duration, Instant};

use bench::{MiniVm, Res, ENTRY_RFLAGS, MIB, TSS_ADDR};
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::VcpuExit;

/// `mov dx,0x81; out dx,eax; xor eax,eax; mov dx,0xf4; out dx,eax; jmp $`
const TAIL: &[u8] = &[
    0x66, 0xba, 0x81, 0x00, 0xef, 0x31, 0xc0, 0x66, 0xba, 0xf4, 0x00, 0xef, 0xeb, 0xfe,
];
const PORT_EXIT: u16 = 0xF4;
/// What `cpuid-table` plants in CPUID leaf 0 EBX: "LOOK".
const PLANTED: u32 = u32::from_le_bytes(*b"LOOK");

struct Probe {
    name: &'static str,
    /// Guest code run before `TAIL` (bytes from GNU as, Intel syntax).
    code: &'static [u8],
    /// What a guest at CPL3 on hardware KVM gets.
    expect: &'static str,
    setup: fn(&mut MiniVm) -> Res<()>,
}

fn no_setup(_: &mut MiniVm) -> Res<()> {
    Ok(())
}

fn iopl0(vm: &mut MiniVm) -> Res<()> {
    let mut regs = vm.vcpu.get_regs()?;
    regs.rflags = ENTRY_RFLAGS & !0x3000;
    Ok(vm.vcpu.set_regs(&regs)?)
}

/// Moves the TSS's I/O map base past its limit: no I/O permission bitmap,
/// so only IOPL decides. (Zeroed, the TSS is its own all-allowing bitmap.)
fn no_io_bitmap(vm: &mut MiniVm) -> Res<()> {
    vm.mem.write(TSS_ADDR + 102, &0x68u16.to_le_bytes());
    Ok(())
}

fn iopl0_no_io_bitmap(vm: &mut MiniVm) -> Res<()> {
    iopl0(vm)?;
    no_io_bitmap(vm)
}

fn plant_cpuid(vm: &mut MiniVm) -> Res<()> {
    let mut cpuid = vm.kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)?;
    for entry in cpuid.as_mut_slice().iter_mut().filter(|e| e.function == 0) {
        entry.ebx = PLANTED;
    }
    Ok(vm.vcpu.set_cpuid2(&cpuid)?)
}

const fn probe(name: &'static str, code: &'static [u8], expect: &'static str) -> Probe {
    Probe {
        name,
        code,
        expect,
        setup: no_setup,
    }
}

const OUT_TWICE: &[u8] = &[
    // mov eax,1; mov dx,0x81; out dx,eax; mov eax,2
    0xb8, 0x01, 0x00, 0x00, 0x00, 0x66, 0xba, 0x81, 0x00, 0xef, 0xb8, 0x02, 0x00, 0x00, 0x00,
];

const PROBES: &[Probe] = &[
    probe("rflags", &[0x9c, 0x58], "3002 (IOPL 3, IF 0)"), // pushfq; pop rax
    // mov eax,cs; shl eax,16; mov ax,ss
    probe(
        "cs:ss",
        &[0x8c, 0xc8, 0xc1, 0xe0, 0x10, 0x66, 0x8c, 0xd0],
        "b0013 (the entry selectors)",
    ),
    Probe {
        name: "cpuid-table", // xor eax,eax; cpuid; mov eax,ebx
        code: &[0x31, 0xc0, 0x0f, 0xa2, 0x89, 0xd8],
        expect: "4b4f4f4c (\"LOOK\", planted with KVM_SET_CPUID2)",
        setup: plant_cpuid,
    },
    // mov eax,1; cpuid; mov eax,ecx
    probe(
        "cpuid1-ecx",
        &[0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x89, 0xc8],
        "KVM's leaf 1 ECX (below), OSXSAVE clear",
    ),
    // mov eax,7; movd xmm0,eax; paddd xmm0,xmm0; movd eax,xmm0
    probe(
        "sse",
        &[
            0xb8, 0x07, 0x00, 0x00, 0x00, 0x66, 0x0f, 0x6e, 0xc0, 0x66, 0x0f, 0xfe, 0xc0, 0x66,
            0x0f, 0x7e, 0xc0,
        ],
        "e (SSE2 works)",
    ),
    // xor ecx,ecx; xgetbv
    probe(
        "xgetbv",
        &[0x31, 0xc9, 0x0f, 0x01, 0xd0],
        "Shutdown (#UD, CR4.OSXSAVE=0)",
    ),
    // vpxor ymm0,ymm0,ymm0; mov eax,1
    probe(
        "avx",
        &[0xc5, 0xfd, 0xef, 0xc0, 0xb8, 0x01, 0x00, 0x00, 0x00],
        "Shutdown (#UD, CR4.OSXSAVE=0)",
    ),
    // mov rax,0x1234; push rax; pop rbx; mov eax,ebx
    probe(
        "stack",
        &[
            0x48, 0xc7, 0xc0, 0x34, 0x12, 0x00, 0x00, 0x50, 0x5b, 0x89, 0xd8,
        ],
        "1234",
    ),
    // mov ecx,100000000; 1: dec ecx; jnz 1b
    probe(
        "spin-1e8",
        &[0xb9, 0x00, 0xe1, 0xf5, 0x05, 0xff, 0xc9, 0x75, 0xfc],
        "0 in ~50 ms (native)",
    ),
    probe("rdtsc", &[0x0f, 0x31, 0x31, 0xc0], "0"), // rdtsc; xor eax,eax
    // mov eax,0x13; mov ds,eax; mov ax,ds
    probe(
        "load-ds",
        &[0xb8, 0x13, 0x00, 0x00, 0x00, 0x8e, 0xd8, 0x66, 0x8c, 0xd8],
        "13 (from the guest's GDT)",
    ),
    // mov al,0x41; mov dx,0xe9; out dx,al
    probe(
        "out-e9",
        &[0xb0, 0x41, 0x66, 0xba, 0xe9, 0x00, 0xee],
        "e9:41 41",
    ),
    Probe {
        name: "out-iopl0",
        code: &[],
        expect: "0 (a zeroed TSS is its own all-clear bitmap)",
        setup: iopl0,
    },
    Probe {
        name: "out-iopl0-nomap",
        code: &[],
        expect: "Shutdown (#GP)",
        setup: iopl0_no_io_bitmap,
    },
    Probe {
        name: "out-iopl3-nomap",
        code: OUT_TWICE,
        expect: "1 2 (IOPL 3 alone allows)",
        setup: no_io_bitmap,
    },
    probe("ud2", &[0x0f, 0x0b], "Shutdown"),
    probe("hlt", &[0xf4], "Shutdown (#GP)"),
    probe("syscall", &[0x0f, 0x05], "Shutdown (#UD, EFER.SCE=0)"),
];

/// Runs a probe to its exit; returns the port writes seen and how it ended.
fn run(probe: &Probe) -> Res<(String, Duration, String)> {
    let mut vm = MiniVm::new(64 * MIB, &[probe.code, TAIL].concat())?;
    (probe.setup)(&mut vm)?;
    let mut seen = Vec::new();
    let start = Instant::now();
    let end = loop {
        match vm.vcpu.run() {
            Ok(VcpuExit::IoOut(PORT_EXIT, _)) => break String::new(),
            Ok(VcpuExit::IoOut(port, data)) => {
                let mut word = [0u8; 4];
                word[..data.len().min(4)].copy_from_slice(&data[..data.len().min(4)]);
                let value = u32::from_le_bytes(word);
                seen.push(match port {
                    0x81 => format!("{value:x}"),
                    _ => format!("{port:x}:{value:x}"),
                });
            }
            Ok(other) => break format!("{other:?}"),
            Err(e) => break format!("KVM_RUN: {e}"),
        }
    };
    let took = start.elapsed();
    seen.push(end);
    Ok((seen.join(" ").trim().to_string(), took, vm.describe()))
}

fn main() -> Res<()> {
    let verbose = std::env::args().any(|a| a == "-v" || a == "--verbose");
    println!(
        "{:<16} {:>9}  {:<26} expected on VMX/SVM",
        "probe", "time", "got (hex)"
    );
    for probe in PROBES {
        let (got, took, state) = run(probe)?;
        let took = format!("{took:.1?}");
        println!("{:<16} {took:>9}  {got:<26} {}", probe.name, probe.expect);
        if verbose {
            println!("{:<16} then KVM_GET_*REGS: {state}", "");
        }
    }
    let kvm = kvm_ioctls::Kvm::new()?;
    let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)?;
    let leaf = |f: u32| {
        supported
            .as_slice()
            .iter()
            .find(|e| e.function == f)
            .copied()
    };
    if let (Some(l0), Some(l1)) = (leaf(0), leaf(1)) {
        let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        println!(
            "KVM_GET_SUPPORTED_CPUID: leaf 0 {} (ebx {:x}), leaf 1 ecx {:x}",
            String::from_utf8_lossy(&vendor),
            l0.ebx,
            l1.ecx
        );
    }
    let host = std::arch::x86_64::__cpuid(1);
    println!("host (this process) CPUID leaf 1 ecx {:x}", host.ecx);
    Ok(())
}
