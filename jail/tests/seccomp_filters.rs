//! Each compiled policy, installed in a forked child with nothing else of
//! the jail: the syscalls a normal run makes still work, and forbidden ones
//! (execve, socket(AF_INET), openat, ptrace, mount, executable mappings) end
//! the child with exit code 159 after one violation record on the report fd.
//! harness = false: one thread, so forking is safe.

use std::os::fd::RawFd;
use std::path::Path;

use jail::seccomp::{self, Role, Violation, VIOLATION_EXIT_CODE};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Forks; the child installs the reporter on a pipe, sets no_new_privs,
/// applies `role` and runs `body`, then exits 0. Returns the exit code and
/// what the child wrote on the pipe.
fn in_child(role: Role, body: &dyn Fn()) -> (i32, Vec<u8>) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is an array of two ints for pipe to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let program = role.program();
    // SAFETY: single-threaded test binary; the child only makes raw syscalls
    // on memory allocated before the fork, then exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: we are the child; see above.
        unsafe {
            libc::close(fds[0]);
            if seccomp::install_sigsys_reporter(fds[1]).is_err()
                || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || seccompiler::apply_filter(&program).is_err()
            {
                libc::_exit(90);
            }
            body();
            libc::_exit(0);
        }
    }
    let mut out = Vec::new();
    // SAFETY: closing our copy of the write end, then reading into a buffer we own.
    unsafe {
        libc::close(fds[1]);
        let mut buf = [0u8; 64];
        loop {
            let n = libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        libc::close(fds[0]);
    }
    let mut status = 0;
    // SAFETY: pid is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (code, out)
}

/// Syscalls every role's normal run makes, with harmless arguments; a trap
/// would end the child with 159.
fn everyday() {
    // SAFETY: each call gets valid or deliberately invalid (harmless) arguments.
    unsafe {
        libc::getpid();
        libc::syscall(libc::SYS_gettid);
        let mut word = 0u32;
        libc::syscall(libc::SYS_futex, &mut word, libc::FUTEX_WAKE, 1, 0, 0, 0);
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        libc::mprotect(p, 4096, libc::PROT_READ);
        libc::madvise(p, 4096, libc::MADV_DONTNEED);
        libc::munmap(p, 4096);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old);
        let mut ss: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut ss);
        libc::fcntl(0, libc::F_GETFD);
        libc::close(-1);
        libc::write(-1, std::ptr::null(), 0);
    }
}

fn execve() {
    let argv = [std::ptr::null::<libc::c_char>()];
    // SAFETY: a NULL-terminated argv and envp; /bin/true or nothing.
    unsafe { libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), argv.as_ptr()) };
}
fn socket_inet() {
    // SAFETY: socket takes integers.
    unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
}
fn openat() {
    // SAFETY: a valid C string.
    unsafe { libc::openat(libc::AT_FDCWD, c"/etc/hostname".as_ptr(), libc::O_RDONLY) };
}
fn ptrace() {
    // SAFETY: PTRACE_TRACEME takes no pointers.
    unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
}
fn mount() {
    // SAFETY: valid C strings; it would fail with EPERM anyway.
    unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
}
fn ioctl_tiocsti() {
    // SAFETY: an invalid fd; the request is never carried out.
    unsafe { libc::ioctl(-1, libc::TIOCSTI, std::ptr::null::<u8>()) };
}
fn mmap_exec() {
    // SAFETY: an anonymous mapping we never use.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
}

type Case = (&'static str, fn(), libc::c_long);

/// Syscall numbers by name, for every syscall the policies of this arch allow.
mod numbers {
    macro_rules! sys {
        ($table:ident: $($name:ident = $value:ident),* $(,)?) => {
            pub const $table: &[(&str, libc::c_long)] = &[$((stringify!($name), libc::$value)),*];
        };
    }
    sys!(COMMON:
        accept4 = SYS_accept4, bind = SYS_bind, brk = SYS_brk, capget = SYS_capget,
        capset = SYS_capset, chdir = SYS_chdir, clone = SYS_clone, clone3 = SYS_clone3,
        close = SYS_close, close_range = SYS_close_range, connect = SYS_connect,
        epoll_create1 = SYS_epoll_create1, epoll_ctl = SYS_epoll_ctl, eventfd2 = SYS_eventfd2,
        execve = SYS_execve, execveat = SYS_execveat, exit = SYS_exit, exit_group = SYS_exit_group,
        fallocate = SYS_fallocate, fcntl = SYS_fcntl, fdatasync = SYS_fdatasync,
        ftruncate = SYS_ftruncate, futex = SYS_futex, getpid = SYS_getpid, getppid = SYS_getppid,
        getrandom = SYS_getrandom, gettid = SYS_gettid, ioctl = SYS_ioctl, setns = SYS_setns,
        mremap = SYS_mremap,
        landlock_add_rule = SYS_landlock_add_rule,
        landlock_create_ruleset = SYS_landlock_create_ruleset,
        landlock_restrict_self = SYS_landlock_restrict_self, listen = SYS_listen,
        lseek = SYS_lseek, madvise = SYS_madvise, memfd_create = SYS_memfd_create,
        mmap = SYS_mmap, mount = SYS_mount, mprotect = SYS_mprotect, munmap = SYS_munmap,
        newfstatat = SYS_newfstatat, openat = SYS_openat, pidfd_open = SYS_pidfd_open,
        pidfd_send_signal = SYS_pidfd_send_signal, pipe2 = SYS_pipe2, pivot_root = SYS_pivot_root,
        prctl = SYS_prctl, pread64 = SYS_pread64, preadv = SYS_preadv, prlimit64 = SYS_prlimit64,
        pwritev = SYS_pwritev, read = SYS_read, recvfrom = SYS_recvfrom, recvmsg = SYS_recvmsg,
        restart_syscall = SYS_restart_syscall, rseq = SYS_rseq, rt_sigaction = SYS_rt_sigaction,
        rt_sigprocmask = SYS_rt_sigprocmask, rt_sigreturn = SYS_rt_sigreturn,
        sched_getaffinity = SYS_sched_getaffinity, seccomp = SYS_seccomp, sendmsg = SYS_sendmsg,
        sendto = SYS_sendto, set_robust_list = SYS_set_robust_list,
        set_tid_address = SYS_set_tid_address, setsockopt = SYS_setsockopt,
        shutdown = SYS_shutdown, sigaltstack = SYS_sigaltstack, signalfd4 = SYS_signalfd4,
        socket = SYS_socket, socketpair = SYS_socketpair, statx = SYS_statx, tgkill = SYS_tgkill,
        umount2 = SYS_umount2, unshare = SYS_unshare, wait4 = SYS_wait4, write = SYS_write,
    );
    #[cfg(target_arch = "x86_64")]
    sys!(ARCH:
        arch_prctl = SYS_arch_prctl, dup2 = SYS_dup2, epoll_wait = SYS_epoll_wait,
        mkdir = SYS_mkdir, poll = SYS_poll, readlink = SYS_readlink, rmdir = SYS_rmdir,
        unlink = SYS_unlink,
    );
    #[cfg(target_arch = "aarch64")]
    sys!(ARCH:
        dup3 = SYS_dup3, epoll_pwait = SYS_epoll_pwait, mkdirat = SYS_mkdirat, ppoll = SYS_ppoll,
        readlinkat = SYS_readlinkat, unlinkat = SYS_unlinkat,
    );

    /// The number of a syscall some policy of this arch allows.
    pub fn number(name: &str) -> Option<libc::c_long> {
        COMMON
            .iter()
            .chain(ARCH)
            .find(|(n, _)| *n == name)
            .map(|&(_, nr)| nr)
    }
}

/// Calls that would end or derail the child even with invalid arguments;
/// the reporter's exit_group ends every child anyway.
const NOT_CALLED: [&str; 5] = ["exit", "exit_group", "rt_sigreturn", "clone", "clone3"];

/// One call per rule of `role`'s policy: arguments -1 (so the call fails
/// with EBADF, EFAULT or EINVAL and does nothing) except where the rule
/// has a condition, which gets the value the rule allows.
fn every_rule(role: Role) -> Vec<(String, libc::c_long, [i64; 6])> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../seccomp-policies")
        .join(std::env::consts::ARCH)
        .join(format!("{}.json", role.name()));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("policy")).expect("json");
    let mut calls = Vec::new();
    for rule in doc[role.name()]["filter"].as_array().expect("filter") {
        let name = rule["syscall"].as_str().expect("syscall name");
        if NOT_CALLED.contains(&name) {
            continue;
        }
        let nr = numbers::number(name).unwrap_or_else(|| panic!("no number for {name}"));
        let mut args = [-1i64; 6];
        for cond in rule["args"].as_array().into_iter().flatten() {
            let index = cond["index"].as_u64().expect("index") as usize;
            args[index] = cond["val"].as_i64().expect("val");
        }
        calls.push((name.to_owned(), nr, args));
    }
    calls
}

fn forbidden(role: Role) -> Vec<Case> {
    let mut cases: Vec<Case> = vec![
        ("ptrace", ptrace, libc::SYS_ptrace),
        ("ioctl(TIOCSTI)", ioctl_tiocsti, libc::SYS_ioctl),
        ("execve", execve, libc::SYS_execve),
        ("mmap(PROT_EXEC)", mmap_exec, libc::SYS_mmap),
    ];
    if role != Role::Supervisor {
        cases.extend([
            ("socket(AF_INET)", socket_inet as fn(), libc::SYS_socket),
            ("openat", openat, libc::SYS_openat),
            ("mount", mount, libc::SYS_mount),
        ]);
    }
    cases
}

/// The violation record a child wrote, if it wrote exactly one.
fn record(out: &[u8]) -> Option<Violation> {
    <[u8; Violation::SIZE]>::try_from(out)
        .ok()
        .and_then(|b| Violation::from_bytes(&b))
}

fn main() {
    let mut failures = 0;
    for role in Role::ALL {
        let calls = every_rule(role);
        let count = calls.len();
        let every_rule = move || {
            for (_, nr, a) in &calls {
                // SAFETY: every argument is -1 or the rule's allowed value, so
                // each call fails or is harmless (see every_rule).
                unsafe { libc::syscall(*nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
            }
        };
        let allowed: [(String, &dyn Fn()); 2] = [
            (format!("all {count} rules' calls"), &every_rule),
            ("everyday syscalls".into(), &everyday),
        ];
        for (what, body) in allowed {
            let (code, out) = in_child(role, body);
            if code != 0 || !out.is_empty() {
                let record = record(&out);
                eprintln!(
                    "FAIL {}: {what}: exit {code}, report {record:?}",
                    role.name()
                );
                failures += 1;
            } else {
                println!("ok {}: {what} run", role.name());
            }
        }
        for (what, body, nr) in forbidden(role) {
            let (code, out) = in_child(role, &body);
            let record = record(&out);
            let want = Violation {
                arch: AUDIT_ARCH,
                syscall: nr,
            };
            if code != VIOLATION_EXIT_CODE || record != Some(want) {
                eprintln!(
                    "FAIL {}: {what}: exit {code}, record {record:?}, want {want:?}",
                    role.name()
                );
                failures += 1;
            } else {
                println!(
                    "ok {}: {what} is reported and ends the process",
                    role.name()
                );
            }
        }
    }
    if failures > 0 {
        eprintln!("{failures} failures");
        std::process::exit(1);
    }
}
