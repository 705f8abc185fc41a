//! The Wasm unikernel: runs the WebAssembly module the supervisor placed in
//! guest memory (boot info `module`) with wasmi, as a WASI preview1 command
//! (`_start`). The module's `proc_exit` status becomes the sandbox's; the
//! runtime's own failures exit with `guest_abi::wasm_exit` statuses after
//! one line on the console starting "wasm: ".
#![no_std]
#![no_main]

extern crate alloc;

mod heap;
mod wasi;

use guest_rt::abi::wasm_exit;
use guest_rt::{println, BootInfo};
use wasmi::{Engine, Linker, Module, Store};

fn main(boot: &'static BootInfo, vcpu: u64) -> u32 {
    if vcpu != 0 {
        loop {
            guest_rt::wait(guest_rt::abi::WAIT_FOREVER);
        }
    }
    heap::init(boot);
    let Some(bytes) = module_bytes(boot) else {
        println!("wasm: no module in boot info");
        return wasm_exit::NO_MODULE;
    };
    let engine = Engine::default();
    let module = match Module::new(&engine, bytes) {
        Ok(module) => module,
        Err(e) => {
            println!("wasm: not a valid module: {e}");
            return wasm_exit::INVALID_MODULE;
        }
    };
    let mut store = Store::new(&engine, wasi::Ctx::new(boot));
    let mut linker = Linker::new(&engine);
    if let Err(e) = wasi::define(&mut linker, &module) {
        println!("wasm: cannot link the module: {e}");
        return wasm_exit::INSTANTIATION;
    }
    let instance = match linker.instantiate_and_start(&mut store, &module) {
        Ok(instance) => instance,
        Err(e) => {
            return failed(
                &e,
                "cannot instantiate the module",
                wasm_exit::INSTANTIATION,
            )
        }
    };
    let Ok(start) = instance.get_typed_func::<(), ()>(&store, "_start") else {
        println!("wasm: the module exports no `_start` function of type () -> ()");
        return wasm_exit::NO_START;
    };
    match start.call(&mut store, ()) {
        Ok(()) => 0,
        Err(e) => failed(&e, "trap", wasm_exit::TRAP),
    }
}

/// The status for a failed call: the module's own exit status if it was
/// `proc_exit`, else `status` after a line saying `what` and why.
fn failed(e: &wasmi::Error, what: &str, status: u32) -> u32 {
    if let Some(code) = e.i32_exit_status() {
        return code as u32 & 0xff;
    }
    if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
        println!("wasm: out of fuel");
        return wasm_exit::OUT_OF_FUEL;
    }
    println!("wasm: {what}: {e}");
    status
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
