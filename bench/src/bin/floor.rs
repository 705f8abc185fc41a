//! The benchmark floor: the smallest KVM program that enters a guest in the
//! entry state of Guest ABI v1 (see `bench::MiniVm`) and leaves through the
//! exit port. Whatever cordon costs above this (processes, jail, ELF loading,
//! boot info) is its own overhead.
//!
//! `floor` runs `xor eax,eax; mov dx,0xf4; out dx,eax` and stops at the first
//! port exit. `floor --port-writes N` first makes N 32-bit writes to port
//! 0x80, each one a full exit to this process and back: the exit round trip.

use std::time::Duration;

use argh::FromArgs;
use bench::{MiniVm, Res, MIB};
use kvm_ioctls::{VcpuExit, VcpuFd};

/// Benchmark floor: a minimal KVM guest at CPL3 that exits through port 0xF4.
#[derive(FromArgs)]
struct Args {
    /// guest memory in MiB (default 64, cordon's default)
    #[argh(option, default = "64")]
    mem: u64,
    /// make N 32-bit writes to port 0x80 (N exits) before the exit write
    #[argh(option, default = "0")]
    port_writes: u64,
    /// after the guest exits, sleep this many milliseconds with the VM alive
    #[argh(option, default = "0")]
    hold_ms: u64,
    /// report the guest's exit status and writes on stderr
    #[argh(switch, short = 'v')]
    verbose: bool,
}

const PORT_DELAY: u16 = 0x80;
const PORT_EXIT: u16 = 0xF4;

/// `xor eax,eax; mov dx,0xf4; out dx,eax; jmp $`
const EXIT_CODE: &[u8] = &[0x31, 0xc0, 0x66, 0xba, 0xf4, 0x00, 0xef, 0xeb, 0xfe];

/// With RCX = N: N times `out 0x80, eax`, then EXIT_CODE right after it.
/// ```text
///  0: 66 ba 80 00   mov dx, 0x80
///  4: e3 06         jrcxz 12
///  6: ef            out dx, eax
///  7: 48 ff c9      dec rcx
/// 10: eb f8         jmp 4
/// ```
const LOOP_CODE: &[u8] = &[
    0x66, 0xba, 0x80, 0x00, 0xe3, 0x06, 0xef, 0x48, 0xff, 0xc9, 0xeb, 0xf8,
];

/// Runs the vCPU to the exit write; returns (exit status, port 0x80 writes).
fn run(vcpu: &mut VcpuFd) -> Res<(u32, u64)> {
    let mut writes = 0u64;
    loop {
        match vcpu.run()? {
            VcpuExit::IoOut(PORT_DELAY, _) => writes += 1,
            VcpuExit::IoOut(PORT_EXIT, data) => {
                let status = u32::from_le_bytes(data.try_into()?);
                return Ok((status, writes));
            }
            other => return Err(format!("unexpected exit: {other:?}").into()),
        }
    }
}

fn main() -> Res<()> {
    let args: Args = argh::from_env();
    if args.mem < 2 {
        return Err("--mem must be at least 2 (MiB): code at 1 MiB, stack top at 2 MiB".into());
    }
    let code = if args.port_writes > 0 {
        [LOOP_CODE, EXIT_CODE].concat()
    } else {
        EXIT_CODE.to_vec()
    };
    let mut vm = MiniVm::new(args.mem * MIB, &code)?;
    if args.port_writes > 0 {
        let mut regs = vm.vcpu.get_regs()?;
        regs.rcx = args.port_writes;
        vm.vcpu.set_regs(&regs)?;
    }
    let (status, writes) = run(&mut vm.vcpu).map_err(|e| format!("{e} ({})", vm.describe()))?;
    if args.verbose {
        eprintln!("floor: guest exit status {status}, {writes} port 0x80 writes");
    }
    if writes != args.port_writes || status != 0 {
        return Err(format!("guest exited with {status} after {writes} writes").into());
    }
    std::thread::sleep(Duration::from_millis(args.hold_ms));
    Ok(())
}
