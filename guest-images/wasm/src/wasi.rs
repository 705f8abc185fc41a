//! WASI preview1 (`wasi_snapshot_preview1`) for the one module the
//! runtime runs: its arguments and environment from boot info, stdio on the
//! virtio consoles (`stdio`), clocks from the TSC, `random_get` from
//! virtio-rng, `proc_exit`. Every other import of that module returns
//! ENOSYS; imports from any other module fail linking.

use alloc::vec::Vec;

use guest_rt::{boot, BootInfo};
use wasmi::{Caller, Error, Extern, Linker, Memory, Module, Val, ValType};

use crate::stdio::Stdio;

/// The WASI module name.
const WASI: &str = "wasi_snapshot_preview1";

// WASI errno values.
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EIO: i32 = 29;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

// Clock ids.
const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME: i32 = 2;
const CLOCK_THREAD_CPUTIME: i32 = 3;

/// `filetype::character_device`.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// Rights of stdio: fd_read (bit 1) or fd_write (bit 6), fd_fdstat_set_flags
/// (bit 3) is not granted; poll_fd_readwrite (bit 27).
const RIGHTS_STDIN: u64 = (1 << 1) | (1 << 27);
const RIGHTS_STDOUT: u64 = (1 << 6) | (1 << 27);

/// What the host functions need: the module's argv and environment, its
/// stdio.
pub struct Ctx {
    args: Vec<&'static [u8]>,
    env: Vec<&'static [u8]>,
    boot: &'static BootInfo,
    stdio: Stdio,
}

impl Ctx {
    pub fn new(boot: &'static BootInfo, stdio: Stdio) -> Ctx {
        Ctx {
            args: boot::argv(boot).iter().collect(),
            env: boot::env(boot).iter().collect(),
            boot,
            stdio,
        }
    }
}

/// Defines every WASI import `module` makes.
pub fn define(linker: &mut Linker<Ctx>, module: &Module) -> Result<(), wasmi::errors::LinkerError> {
    linker
        .func_wrap(
            WASI,
            "args_sizes_get",
            |c: Caller<'_, Ctx>, n: i32, size: i32| sizes(c, |ctx| &ctx.args, n, size),
        )?
        .func_wrap(
            WASI,
            "args_get",
            |c: Caller<'_, Ctx>, ptrs: i32, buf: i32| strings(c, |ctx| &ctx.args, ptrs, buf),
        )?
        .func_wrap(
            WASI,
            "environ_sizes_get",
            |c: Caller<'_, Ctx>, n: i32, size: i32| sizes(c, |ctx| &ctx.env, n, size),
        )?
        .func_wrap(
            WASI,
            "environ_get",
            |c: Caller<'_, Ctx>, ptrs: i32, buf: i32| strings(c, |ctx| &ctx.env, ptrs, buf),
        )?
        .func_wrap(WASI, "fd_write", fd_write)?
        .func_wrap(WASI, "fd_read", fd_read)?
        .func_wrap(WASI, "fd_close", |_: Caller<'_, Ctx>, fd: i32| {
            stdio_only(fd, SUCCESS)
        })?
        .func_wrap(
            WASI,
            "fd_seek",
            |_: Caller<'_, Ctx>, fd: i32, _: i64, _: i32, _: i32| stdio_only(fd, ESPIPE),
        )?
        .func_wrap(WASI, "fd_fdstat_get", fd_fdstat_get)?
        .func_wrap(
            WASI,
            "fd_prestat_get",
            |_: Caller<'_, Ctx>, _: i32, _: i32| EBADF,
        )?
        .func_wrap(
            WASI,
            "fd_prestat_dir_name",
            |_: Caller<'_, Ctx>, _: i32, _: i32, _: i32| EBADF,
        )?
        .func_wrap(WASI, "clock_time_get", clock_time_get)?
        .func_wrap(WASI, "clock_res_get", clock_res_get)?
        .func_wrap(WASI, "sched_yield", |_: Caller<'_, Ctx>| SUCCESS)?
        .func_wrap(WASI, "random_get", random_get)?
        .func_wrap(WASI, "poll_oneoff", poll_oneoff)?
        .func_wrap(
            WASI,
            "proc_exit",
            |_: Caller<'_, Ctx>, code: i32| -> Result<(), Error> { Err(Error::i32_exit(code)) },
        )?;
    for import in module.imports() {
        if import.module() != WASI || guest_rt::abi::WASI_SUPPORTED.contains(&import.name()) {
            continue;
        }
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        // Every WASI preview1 function but proc_exit returns an errno.
        if ty.results() == [ValType::I32] {
            linker.func_new(WASI, import.name(), ty, |_, _, results: &mut [Val]| {
                results[0] = Val::I32(ENOSYS);
                Ok(())
            })?;
        }
    }
    Ok(())
}

fn stdio_only(fd: i32, ok: i32) -> i32 {
    if (0..=2).contains(&fd) {
        ok
    } else {
        EBADF
    }
}

fn memory(caller: &Caller<'_, Ctx>) -> Option<Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

/// `len` bytes at `addr` of the module's memory.
fn range(data: &[u8], addr: i32, len: usize) -> Option<core::ops::Range<usize>> {
    let start = usize::try_from(addr as u32).ok()?;
    let end = start.checked_add(len)?;
    (end <= data.len()).then_some(start..end)
}

fn put_u32(data: &mut [u8], addr: i32, value: u32) -> Result<(), i32> {
    let r = range(data, addr, 4).ok_or(EFAULT)?;
    data[r].copy_from_slice(&value.to_le_bytes());
    Ok(())
}

fn put_u64(data: &mut [u8], addr: i32, value: u64) -> Result<(), i32> {
    let r = range(data, addr, 8).ok_or(EFAULT)?;
    data[r].copy_from_slice(&value.to_le_bytes());
    Ok(())
}

fn get_u32(data: &[u8], addr: i32) -> Result<u32, i32> {
    let r = range(data, addr, 4).ok_or(EFAULT)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[r]);
    Ok(u32::from_le_bytes(b))
}

fn errno(result: Result<(), i32>) -> i32 {
    result.err().unwrap_or(SUCCESS)
}

/// `args_sizes_get` / `environ_sizes_get`: the count and the bytes the
/// strings take with their NULs.
fn sizes(mut c: Caller<'_, Ctx>, list: fn(&Ctx) -> &Vec<&'static [u8]>, n: i32, size: i32) -> i32 {
    let Some(mem) = memory(&c) else { return EFAULT };
    let strings = list(c.data());
    let count = strings.len() as u32;
    let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
    let data = mem.data_mut(&mut c);
    errno(put_u32(data, n, count).and_then(|()| put_u32(data, size, bytes as u32)))
}

/// `args_get` / `environ_get`: pointers at `ptrs`, NUL-terminated strings
/// packed at `buf`.
fn strings(
    mut c: Caller<'_, Ctx>,
    list: fn(&Ctx) -> &Vec<&'static [u8]>,
    ptrs: i32,
    buf: i32,
) -> i32 {
    let Some(mem) = memory(&c) else { return EFAULT };
    let strings = list(c.data()).clone();
    let data = mem.data_mut(&mut c);
    let mut at = buf as u32;
    for (i, s) in strings.iter().enumerate() {
        let slot = ptrs.wrapping_add(4 * i as i32);
        if let Err(e) = put_u32(data, slot, at) {
            return e;
        }
        let Some(r) = range(data, at as i32, s.len() + 1) else {
            return EFAULT;
        };
        let (text, nul) = data[r].split_at_mut(s.len());
        text.copy_from_slice(s);
        nul[0] = 0;
        at = at.wrapping_add(s.len() as u32 + 1);
    }
    SUCCESS
}

/// The (pointer, length) pairs of `iovs_len` iovecs at `iovs`.
fn iovecs(data: &[u8], iovs: i32, iovs_len: i32) -> Result<Vec<(u32, u32)>, i32> {
    (0..iovs_len.max(0))
        .map(|i| {
            let at = iovs.wrapping_add(8 * i);
            Ok((get_u32(data, at)?, get_u32(data, at.wrapping_add(4))?))
        })
        .collect()
}

/// Gathers the iovecs at `iovs` and writes them to stdout or stderr.
fn fd_write(mut c: Caller<'_, Ctx>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let Some(mem) = memory(&c) else { return EFAULT };
    let (data, ctx) = mem.data_and_store_mut(&mut c);
    let list = match iovecs(data, iovs, iovs_len) {
        Ok(list) => list,
        Err(e) => return e,
    };
    let mut total: u32 = 0;
    for (ptr, len) in list {
        let Some(r) = range(data, ptr as i32, len as usize) else {
            return EFAULT;
        };
        if ctx.stdio.write(fd, &data[r]).is_err() {
            return EIO;
        }
        total = total.wrapping_add(len);
    }
    errno(put_u32(data, nwritten, total))
}

/// Reads stdin into the first non-empty iovec, waiting for at least one
/// byte; 0 bytes read is end of file.
fn fd_read(mut c: Caller<'_, Ctx>, fd: i32, iovs: i32, iovs_len: i32, nread: i32) -> i32 {
    if fd != 0 {
        return EBADF;
    }
    let Some(mem) = memory(&c) else { return EFAULT };
    let (data, ctx) = mem.data_and_store_mut(&mut c);
    let list = match iovecs(data, iovs, iovs_len) {
        Ok(list) => list,
        Err(e) => return e,
    };
    let mut got = 0;
    if let Some(&(ptr, len)) = list.iter().find(|(_, len)| *len > 0) {
        let Some(r) = range(data, ptr as i32, len as usize) else {
            return EFAULT;
        };
        got = match ctx.stdio.read(&mut data[r]) {
            Ok(n) => n as u32,
            Err(_) => return EIO,
        };
    }
    errno(put_u32(data, nread, got))
}

/// Fills `len` bytes at `buf` from the rng device; ENOSYS without one.
fn random_get(mut c: Caller<'_, Ctx>, buf: i32, len: i32) -> i32 {
    let Some(mem) = memory(&c) else { return EFAULT };
    let (data, ctx) = mem.data_and_store_mut(&mut c);
    let Some(r) = range(data, buf, len as u32 as usize) else {
        return EFAULT;
    };
    match ctx.stdio.random(&mut data[r]) {
        None => ENOSYS,
        Some(Ok(())) => SUCCESS,
        Some(Err(_)) => EIO,
    }
}

fn fd_fdstat_get(mut c: Caller<'_, Ctx>, fd: i32, stat: i32) -> i32 {
    let rights = match fd {
        0 => RIGHTS_STDIN,
        1 | 2 => RIGHTS_STDOUT,
        _ => return EBADF,
    };
    let Some(mem) = memory(&c) else { return EFAULT };
    let data = mem.data_mut(&mut c);
    let Some(r) = range(data, stat, 24) else {
        return EFAULT;
    };
    // fdstat: filetype u8, pad, flags u16, pad, rights_base u64,
    // rights_inheriting u64.
    let out = &mut data[r];
    out.fill(0);
    out[0] = FILETYPE_CHARACTER_DEVICE;
    out[8..16].copy_from_slice(&rights.to_le_bytes());
    SUCCESS
}

/// Nanoseconds since boot, from the TSC and its frequency in boot info.
fn monotonic_ns(boot: &BootInfo) -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter; it has no side effects.
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    let khz = boot.tsc_khz.max(1);
    ((u128::from(tsc) * 1_000_000) / u128::from(khz)) as u64
}

fn clock_time_get(mut c: Caller<'_, Ctx>, id: i32, _precision: i64, time: i32) -> i32 {
    let boot = c.data().boot;
    let now = match id {
        CLOCK_REALTIME => boot.boot_time_ns.wrapping_add(monotonic_ns(boot)),
        CLOCK_MONOTONIC | CLOCK_PROCESS_CPUTIME | CLOCK_THREAD_CPUTIME => monotonic_ns(boot),
        _ => return EINVAL,
    };
    let Some(mem) = memory(&c) else { return EFAULT };
    errno(put_u64(mem.data_mut(&mut c), time, now))
}

fn clock_res_get(mut c: Caller<'_, Ctx>, id: i32, res: i32) -> i32 {
    if !(CLOCK_REALTIME..=CLOCK_THREAD_CPUTIME).contains(&id) {
        return EINVAL;
    }
    let Some(mem) = memory(&c) else { return EFAULT };
    errno(put_u64(mem.data_mut(&mut c), res, 1))
}

// poll_oneoff's subscription (48 bytes) and event (32 bytes) layouts.
const SUBSCRIPTION_SIZE: i32 = 48;
const EVENT_SIZE: i32 = 32;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
/// subclockflags::subscription_clock_abstime.
const ABSTIME: u16 = 1;
/// Most subscriptions one call may pass.
const MAX_SUBSCRIPTIONS: i32 = 1024;

/// One subscription, read from the module's memory.
struct Subscription {
    userdata: u64,
    kind: u8,
    /// For a clock: when it fires, in monotonic nanoseconds.
    deadline: u64,
}

fn get_u64(data: &[u8], addr: i32) -> Result<u64, i32> {
    let r = range(data, addr, 8).ok_or(EFAULT)?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[r]);
    Ok(u64::from_le_bytes(b))
}

fn subscription(data: &[u8], at: i32, boot: &BootInfo) -> Result<Subscription, i32> {
    let userdata = get_u64(data, at)?;
    let r = range(data, at, SUBSCRIPTION_SIZE as usize).ok_or(EFAULT)?;
    let kind = data[r.start + 8];
    let mut deadline = 0;
    if kind == EVENTTYPE_CLOCK {
        let id = get_u32(data, at + 16)? as i32;
        let timeout = get_u64(data, at + 24)?;
        let flags = u16::from_le_bytes([data[r.start + 40], data[r.start + 41]]);
        let now = monotonic_ns(boot);
        deadline = match (id, flags & ABSTIME != 0) {
            (_, false) => now.saturating_add(timeout),
            (CLOCK_REALTIME, true) => {
                now.saturating_add(timeout.saturating_sub(boot.boot_time_ns.wrapping_add(now)))
            }
            (_, true) => timeout,
        };
    }
    Ok(Subscription {
        userdata,
        kind,
        deadline,
    })
}

/// Clock subscriptions sleep in the wait call until the earliest one is
/// due; stdio subscriptions are ready at once (a read then waits in
/// fd_read). Writes one event per subscription that is ready.
fn poll_oneoff(mut c: Caller<'_, Ctx>, subs: i32, events: i32, n: i32, nevents: i32) -> i32 {
    if !(1..=MAX_SUBSCRIPTIONS).contains(&n) {
        return EINVAL;
    }
    let Some(mem) = memory(&c) else { return EFAULT };
    let boot = c.data().boot;
    let list: Result<Vec<Subscription>, i32> = (0..n)
        .map(|i| subscription(mem.data(&c), subs.wrapping_add(i * SUBSCRIPTION_SIZE), boot))
        .collect();
    let list = match list {
        Ok(list) => list,
        Err(e) => return e,
    };
    if list.iter().any(|s| s.kind > EVENTTYPE_FD_WRITE) {
        return EINVAL;
    }
    let fd_ready = list.iter().any(|s| s.kind != EVENTTYPE_CLOCK);
    if !fd_ready {
        let due = list.iter().map(|s| s.deadline).min().unwrap_or(0);
        loop {
            let now = monotonic_ns(boot);
            if now >= due {
                break;
            }
            let micros = ((due - now) / 1000).clamp(1, u64::from(u32::MAX - 1)) as u32;
            guest_rt::wait(micros);
        }
    }
    let now = monotonic_ns(boot);
    let data = mem.data_mut(&mut c);
    let mut written = 0;
    for s in &list {
        let ready = match s.kind {
            EVENTTYPE_CLOCK => s.deadline <= now,
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => true,
            _ => false,
        };
        if !ready {
            continue;
        }
        let at = events.wrapping_add(written * EVENT_SIZE);
        let Some(r) = range(data, at, EVENT_SIZE as usize) else {
            return EFAULT;
        };
        let out = &mut data[r];
        out.fill(0);
        out[..8].copy_from_slice(&s.userdata.to_le_bytes());
        out[10] = s.kind;
        written += 1;
    }
    errno(put_u32(data, nevents, written as u32))
}
