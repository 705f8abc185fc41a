//! cordon as a library: run WebAssembly modules and unikernels in jailed
//! micro-VMs from your own program.
//!
//! ```no_run
//! // First thing in `main`: the sandbox's vm and device processes are
//! // re-executions of this very binary, and this turns them into what they
//! // are. In the program's own process it returns at once.
//! cordon::serve_if_spawned();
//!
//! let outcome = cordon::Sandbox::new("examples/hello.wasm")
//!     .arg("--verbose")
//!     .env("GREETING", "hi")
//!     .mem_mib(64)
//!     .timeout(std::time::Duration::from_secs(5))
//!     .run()
//!     .expect("the sandbox could not start");
//! println!("exit status {}", outcome.exit.code());
//! for event in &outcome.events {
//!     println!("{event:?}"); // Started, GuestExit, faults and the action taken, ...
//! }
//! ```
//!
//! [`Sandbox::on_fault`] sets the fault policy (what a vCPU fault or the vm
//! process's death does: stop, reset the vCPU, reboot; and the restart
//! budget), as `--on-vcpu-fault`, `--max-restarts` and
//! `--restart-window` do for `cordon run`.
//!
//! The calling process plays the supervisor: it opens the image, /dev/kvm
//! and guest memory, starts the vm and device processes (each in its jail:
//! namespaces, cgroup, empty root, Landlock, seccomp) and waits for the end.
//! Unlike `cordon run`, it leaves the calling process's signals and
//! seccomp state alone. The sandbox's stdio is the calling process's unless
//! given with [`Sandbox::stdio`].
//! Instead of calling [`serve_if_spawned`], a program may run the `cordon`
//! binary itself (`cordon run ...`).

mod child;
pub mod logger;
mod sandbox;

pub use child::serve_if_spawned;
pub use sandbox::Sandbox;
pub use vmm::error_chain;
pub use vmm::events::VmEvent;
pub use vmm::exit::{ExitCause, SandboxExit};
pub use vmm::policy::{FaultAction, RestartPolicy};
pub use vmm::supervisor::{FaultRecord, Outcome, SandboxEvent, SupervisorError as Error};

/// The Wasm runtime (`guest-images/wasm`), embedded so that a WebAssembly
/// module needs no other file.
pub const WASM_RUNTIME: &[u8] = include_bytes!(concat!(env!("CORDON_GUEST_DIR"), "/wasm"));
