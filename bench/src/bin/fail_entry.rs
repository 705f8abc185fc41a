//! Which known recipes for a failed VM entry (KVM_EXIT_FAIL_ENTRY) this
//! host's KVM turns into that exit. Each recipe puts one inconsistency
//! into an otherwise valid Guest ABI v1 entry state through KVM_SET_SREGS
//! or KVM_SET_REGS, then runs the vCPU once; the table says what
//! happened: the set call refused, the run failed with an errno, or the
//! exit it gave. Run `target/release/fail_entry` on a new host (and inside
//! the emulated L1 for kvm-amd/kvm-intel): the restart tests can only
//! cover a failed entry where some recipe produces one.

use bench::{MiniVm, Res, MIB};
use kvm_ioctls::VcpuExit;

/// `mov dx,0xf4; out dx,eax; jmp $`: exits at once if entry succeeds.
const EXIT_AT_ONCE: &[u8] = &[0x66, 0xba, 0xf4, 0x00, 0xef, 0xeb, 0xfe];

struct Recipe {
    name: &'static str,
    /// What VMX/SVM's consistency checks say about it.
    why: &'static str,
    apply: fn(&MiniVm) -> Res<()>,
}

fn sregs(vm: &MiniVm, change: impl Fn(&mut kvm_bindings::kvm_sregs)) -> Res<()> {
    let mut s = vm.vcpu.get_sregs()?;
    change(&mut s);
    Ok(vm.vcpu.set_sregs(&s)?)
}

const RECIPES: &[Recipe] = &[
    Recipe {
        name: "cs-l-and-d",
        why: "long mode with CS.L=1 and CS.D=1 (SVM: VMRUN consistency check; VMX: guest-state check)",
        apply: |vm| sregs(vm, |s| s.cs.db = 1),
    },
    Recipe {
        name: "cr0-pg-without-pe",
        why: "CR0.PG=1 with CR0.PE=0",
        apply: |vm| sregs(vm, |s| s.cr0 &= !1),
    },
    Recipe {
        name: "cr0-nw-without-cd",
        why: "CR0.NW=1 with CR0.CD=0 (SVM: illegal)",
        apply: |vm| sregs(vm, |s| s.cr0 |= 1 << 29),
    },
    Recipe {
        name: "lma-without-pae",
        why: "EFER.LMA with CR4.PAE=0",
        apply: |vm| sregs(vm, |s| s.cr4 &= !(1 << 5)),
    },
    Recipe {
        name: "cr3-reserved-bits",
        why: "CR3 with bits above MAXPHYADDR",
        apply: |vm| sregs(vm, |s| s.cr3 |= 1 << 62),
    },
    Recipe {
        name: "tr-not-busy",
        why: "TR type 9 (available TSS, not busy)",
        apply: |vm| sregs(vm, |s| s.tr.type_ = 9),
    },
    Recipe {
        name: "ss-dpl-not-cs-dpl",
        why: "SS.DPL 0 while CS.DPL is 3",
        apply: |vm| sregs(vm, |s| s.ss.dpl = 0),
    },
    Recipe {
        name: "cs-not-present",
        why: "CS.P=0",
        apply: |vm| sregs(vm, |s| s.cs.present = 0),
    },
    Recipe {
        name: "rip-non-canonical",
        why: "RIP not canonical",
        apply: |vm| {
            let mut r = vm.vcpu.get_regs()?;
            r.rip = 0x8000_0000_0000_0000;
            Ok(vm.vcpu.set_regs(&r)?)
        },
    },
];

fn main() {
    println!("| recipe | set | run | what the KVM of this host gave |");
    println!("|---|---|---|---|");
    for recipe in RECIPES {
        let vm = match MiniVm::new(16 * MIB, EXIT_AT_ONCE) {
            Ok(vm) => vm,
            Err(e) => {
                eprintln!("fail_entry: cannot build a VM: {e}");
                std::process::exit(1);
            }
        };
        let set = match (recipe.apply)(&vm) {
            Ok(()) => "accepted".to_string(),
            Err(e) => format!("refused ({e})"),
        };
        let mut vcpu = vm.vcpu;
        let run = match vcpu.run() {
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                format!("KVM_EXIT_FAIL_ENTRY (hardware reason {reason:#x}, cpu {cpu})")
            }
            Ok(VcpuExit::IoOut(0xf4, _)) => "ran: the guest exited normally".to_string(),
            Ok(VcpuExit::Shutdown) => "KVM_EXIT_SHUTDOWN".to_string(),
            Ok(VcpuExit::InternalError) => "KVM_EXIT_INTERNAL_ERROR".to_string(),
            Ok(other) => format!("exit {other:?}"),
            Err(e) => format!("KVM_RUN failed ({e})"),
        };
        println!("| {} | {set} | {run} | {} |", recipe.name, recipe.why);
    }
}
