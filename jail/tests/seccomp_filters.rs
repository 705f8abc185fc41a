//! Each compiled policy, installed in a forked child with nothing else of
//! the jail: the syscalls a normal run makes still work, and forbidden ones
//! (execve, socket(AF_INET), openat, ptrace, mount, executable mappings) end
//! the child with exit code 159 after one violation record on the report fd.
//! harness = false: one thread, so forking is safe.

use std::os::fd::RawFd;

use jail::seccomp::{self, Role, Violation, VIOLATION_EXIT_CODE};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Forks; the child installs the reporter on a pipe, sets no_new_privs,
/// applies `role` and runs `body`, then exits 0. Returns the exit code and
/// what the child wrote on the pipe.
fn in_child(role: Role, body: fn()) -> (i32, Vec<u8>) {
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

fn forbidden(role: Role) -> Vec<Case> {
    let mut cases: Vec<Case> = vec![("ptrace", ptrace, libc::SYS_ptrace)];
    if role != Role::Supervisor {
        cases.extend([
            ("execve", execve as fn(), libc::SYS_execve),
            ("socket(AF_INET)", socket_inet, libc::SYS_socket),
            ("openat", openat, libc::SYS_openat),
            ("mount", mount, libc::SYS_mount),
            ("mmap(PROT_EXEC)", mmap_exec, libc::SYS_mmap),
        ]);
    }
    cases
}

fn main() {
    let mut failures = 0;
    for role in Role::ALL {
        let (code, out) = in_child(role, everyday);
        if code != 0 || !out.is_empty() {
            eprintln!(
                "FAIL {}: everyday syscalls: exit {code}, report {out:?}",
                role.name()
            );
            failures += 1;
        } else {
            println!("ok {}: everyday syscalls run", role.name());
        }
        for (what, body, nr) in forbidden(role) {
            let (code, out) = in_child(role, body);
            let record = <[u8; Violation::SIZE]>::try_from(out.as_slice())
                .ok()
                .and_then(|b| Violation::from_bytes(&b));
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
