//! The Wasm unikernel: runs the WebAssembly module the supervisor placed in
//! guest memory (boot info `module`) with wasmi, as a WASI preview1 command
//! (`_start`). The module's `proc_exit` status becomes the sandbox's; the
//! runtime's own failures exit with a `guest_abi::wasm_exit` status and a
//! one-line reason starting "wasm: " (`PORT_EXIT_REASON`), which cordon
//! prints on stderr.
#![no_std]
#![no_main]

extern crate alloc;

mod heap;
mod stdio;
mod wasi;

use alloc::format;
use alloc::string::String;

use guest_rt::abi::wasm_exit;
use guest_rt::BootInfo;
use wasmi::{Config, Engine, Linker, Module, Store};

/// Why the runtime stopped, as status and one line.
struct Failure(u32, String);

fn main(boot: &'static BootInfo, vcpu: u64) -> u32 {
    if vcpu != 0 {
        loop {
            guest_rt::wait(guest_rt::abi::WAIT_FOREVER);
        }
    }
    let devices = guest_virtio::init(boot);
    if !heap::init() {
        guest_rt::exit_with_reason(
            wasm_exit::NO_MODULE,
            b"wasm: no memory for the heap: give the guest more memory (--mem)",
        );
    }
    match run(boot, &devices) {
        Ok(status) => status,
        Err(Failure(status, reason)) => guest_rt::exit_with_reason(status, reason.as_bytes()),
    }
}

/// Runs the module; its exit status, or why the runtime could not.
fn run(boot: &'static BootInfo, devices: &guest_virtio::Devices) -> Result<u32, Failure> {
    let bytes = module_bytes(boot)
        .ok_or_else(|| Failure(wasm_exit::NO_MODULE, "wasm: no module in boot info".into()))?;
    let mut config = Config::default();
    config.consume_fuel(boot.fuel != 0);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, bytes).map_err(|e| {
        Failure(
            wasm_exit::INVALID_MODULE,
            format!("wasm: not a valid module: {e}"),
        )
    })?;
    let stdio = stdio::Stdio::new(devices);
    let mut store = Store::new(&engine, wasi::Ctx::new(boot, stdio));
    if boot.fuel != 0 {
        store
            .set_fuel(boot.fuel)
            .map_err(|e| Failure(wasm_exit::INSTANTIATION, format!("wasm: fuel: {e}")))?;
    }
    let mut linker = Linker::new(&engine);
    wasi::define(&mut linker, &module).map_err(|e| {
        Failure(
            wasm_exit::INSTANTIATION,
            format!("wasm: cannot link the module: {e}"),
        )
    })?;
    let instance = linker
        .instantiate_and_start(&mut store, &module)
        .map_err(|e| {
            failed(
                &e,
                "cannot instantiate the module",
                wasm_exit::INSTANTIATION,
            )
        })?;
    let start = instance
        .get_typed_func::<(), ()>(&store, "_start")
        .map_err(|_| {
            Failure(
                wasm_exit::NO_START,
                "wasm: the module exports no `_start` function of type () -> ()".into(),
            )
        })?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match e.i32_exit_status() {
            Some(code) => Ok(code as u32 & 0xff),
            None => Err(failed(&e, "trap", wasm_exit::TRAP)),
        },
    }
}

/// The failure for an error from wasmi: out of fuel, or `status` with
/// `what` and the error.
fn failed(e: &wasmi::Error, what: &str, status: u32) -> Failure {
    if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
        return Failure(wasm_exit::OUT_OF_FUEL, "wasm: out of fuel".into());
    }
    Failure(status, format!("wasm: {what}: {e}"))
}

/// The module's bytes, if the boot info names a range of RAM.
fn module_bytes(boot: &'static BootInfo) -> Option<&'static [u8]> {
    let range = boot.module;
    if range.size == 0 || range.base == 0 {
        return None;
    }
    let in_ram = boot.ram[..(boot.ram_count as usize).min(boot.ram.len())]
        .iter()
        .any(|r| range.base >= r.base && range.base + range.size <= r.base + r.size);
    if !in_ram {
        return None;
    }
    // SAFETY: the supervisor placed the module at this RAM range, which
    // nothing else (heap, stacks, image) uses and nothing writes while the
    // guest runs, so a shared 'static borrow holds.
    Some(unsafe { core::slice::from_raw_parts(range.base as *const u8, range.size as usize) })
}

guest_rt::entry!(main);
