#!/bin/sh
# Measures which syscalls (and ioctl requests) each cordon process role makes
# on normal runs, and compares them with seccomp-policies/roles.json and the
# policies of this machine's architecture.
#
#   scripts/measure-seccomp.sh [--keep DIR]
#
# Runs a set of guests under `strace -f -ff -X raw` (one trace per thread),
# attributes every thread to a role: the process's argv[1] after execveat
# (`vm`, `device-block`, ...); in the vm process, threads named `vcpuN` are
# the `vcpu` role. Syscalls a child makes between its execveat and its
# role's seccomp filter (the jail's last act; a vCPU thread's own filter at
# the top of its body) are start-up (libc and std init, the jail's layers)
# and are listed apart. The supervisor is measured from its own filter
# too, which it installs once the sandbox's processes are started; a
# respawn after that stacks the supervisor's filter on the child's, so its
# policy also covers what its children do (listed as used by children).
#
# Output: per role, the measured set, then "unused" (allowed by the policy,
# never seen) and "missing" (seen, not allowed). Exits 1 if anything is
# missing. Rules listed as unused are the ones only error paths need (the
# SIGSYS reporter, stderr writes, exit_group, ...) or that these runs did
# not reach; the report says which.
set -eu

cd "$(dirname "$0")/.."
keep=""
if [ "${1:-}" = "--keep" ]; then keep="$2"; fi
command -v strace >/dev/null || { echo "measure-seccomp: strace is needed" >&2; exit 2; }

cargo build -q
arch=$(uname -m)
bin="target/x86_64-unknown-linux-gnu/debug/cordon"
[ "$arch" = aarch64 ] && bin="target/aarch64-unknown-linux-gnu/debug/cordon"
guests=target/guests
work=${keep:-$(mktemp -d)}
mkdir -p "$work"

# blkcheck expects the host pattern: sector N starts with N ^ "HOSTDISK".
python3 - "$work/disk.img" <<'EOF'
import struct, sys
magic = int.from_bytes(b"HOSTDISK", "little")
with open(sys.argv[1], "wb") as f:
    for n in range(32768):
        f.write(struct.pack("<Q", n ^ magic) + bytes(504))
EOF

trace() {
    name=$1; shift
    mkdir -p "$work/$name"
    # Exit codes are the guests' own; the trace is what matters.
    strace -f -ff -qq -X raw --pidns-translation -o "$work/$name/t" "$bin" run --timeout 30 "$@" \
        >"$work/$name.out" 2>"$work/$name.err" || true
}
trace blk --disk "$work/disk.img" --rng --console "$guests/blkcheck" </dev/null
trace blk-ro --disk "$work/disk.img,ro" "$guests/blk-write-ro" </dev/null
trace rng --rng "$guests/rng-read" </dev/null
printf 'first line\nsecond line\nquit\n' | trace console --console "$guests/console-echo"
trace hello "$guests/hello" </dev/null
trace fault "$guests/triple-fault" </dev/null
trace wasm examples/hello.wasm </dev/null

status=0
python3 - "$work" "$arch" <<'EOF' || status=$?
import json, os, re, sys
work, arch = sys.argv[1], sys.argv[2]
CLONE_THREAD = 0x10000
line_re = re.compile(r"^(\w+)\((.*)\)\s+=\s+(\S+)")
seen = {}     # role -> {syscall: count}
ioctls = {}   # role -> {request: count}
startup = {}  # role -> set of syscalls before the role's first act

for run in sorted(d for d in os.listdir(work) if os.path.isdir(os.path.join(work, d))):
    files = {int(f.split(".")[1]): os.path.join(work, run, f)
             for f in os.listdir(os.path.join(work, run))}
    lines = {tid: open(p).read().splitlines() for tid, p in files.items()}
    parent, is_thread = {}, {}
    for tid, ls in lines.items():
        for l in ls:
            # Pids inside a jail's pid namespace come with the host's
            # (--pidns-translation), which names the trace files.
            m = re.match(r"^clone3?\((.*)\)\s+=\s+(?:\d+ /\* )?(\d+)", l)
            if m:
                flags = re.search(r"flags=(0x[0-9a-f]+)", m.group(1))
                child = int(m.group(2))
                parent[child] = tid
                is_thread[child] = bool(flags and int(flags.group(1), 16) & CLONE_THREAD)
    def proc_of(tid):
        while is_thread.get(tid):
            tid = parent[tid]
        return tid
    proc_role = {}
    for tid, ls in lines.items():
        for l in ls:
            m = re.match(r'^execveat\(.*\["cordon", "([\w-]+)"', l)
            if m:
                proc_role[tid] = m.group(1)
    for tid, ls in lines.items():
        pid = proc_of(tid)
        role = "supervisor"
        # Everything before the supervisor's own filter is start-up too;
        # its policy also keeps what a respawn after it needs (issue 6).
        started = False
        if pid != tid:
            # A thread starts under its process's filter (TSYNC)...
            role = proc_role.get(pid, "supervisor")
            started = role != "supervisor"
            # ...but a vCPU thread also adds its own.
            if role == "vm" and any(re.match(r'^prctl\(0xf, "vcpu\d+"\)', l) for l in ls):
                # The vcpu filter goes on in the thread's body: glibc's and
                # std's thread start (rseq, robust list, name) come before.
                role, started = "vcpu", False
        for l in ls:
            m = line_re.match(l)
            if not m:
                continue
            name, args = m.group(1), m.group(2)
            if name == "execveat" and '"cordon"' in args and pid == tid:
                seen.setdefault("supervisor", {}).setdefault(name, 0)
                seen["supervisor"][name] += 1
                role, started = proc_role[tid], False
                continue
            if not started:
                # The filter is the jail's last act: what comes before it,
                # the filter's own installation included, is start-up.
                startup.setdefault(role, set()).add(name)
                if name == "seccomp" and m.group(3) == "0":
                    started = True
                continue
            seen.setdefault(role, {}).setdefault(name, 0)
            seen[role][name] += 1
            if name == "ioctl":
                req = int(args.split(",")[1].strip(), 0)
                ioctls.setdefault(role, {}).setdefault(req, 0)
                ioctls[role][req] += 1

# The vm policies are per guest kind; these runs are unikernel guests.
policy_name = {"vm": "vm-unikernel", "vcpu": "vcpu-unikernel"}
status = 0
for role in sorted(seen):
    pname = policy_name.get(role, role)
    path = f"seccomp-policies/{arch}/{pname}.json"
    rules = json.load(open(path))[pname]["filter"] if os.path.exists(path) else []
    allowed = {r["syscall"] for r in rules}
    allowed_ioctls = {a["val"] for r in rules if r["syscall"] == "ioctl"
                      for a in r.get("args", []) if a["index"] == 1}
    measured = seen[role]
    print(f"== {pname}: {len(measured)} syscalls measured, {len(allowed)} allowed")
    print("   measured: " + " ".join(f"{k}({v})" for k, v in sorted(measured.items())))
    if role in ioctls:
        print("   ioctls:   " + " ".join(f"{k:#x}({v})" for k, v in sorted(ioctls[role].items())))
    if role in startup:
        print("   start-up (before the filter): " + " ".join(sorted(startup[role])))
    # Filters stack: the supervisor's also covers its children, the vm's its
    # vcpu threads; what only those use is listed apart.
    inherited = set()
    for child in ({"supervisor": set(seen) - {"supervisor"}, "vm": {"vcpu"}}).get(role, ()):
        inherited |= set(seen[child]) | startup.get(child, set())
        for req in ioctls.get(child, {}):
            ioctls.setdefault(role, {}).setdefault(req, 0)
    unused = sorted(allowed - set(measured) - inherited)
    if inherited & allowed - set(measured):
        print("   used only by its children/threads: " + " ".join(sorted(inherited & allowed - set(measured))))
    missing = sorted(set(measured) - allowed)
    missing_ioctls = sorted(set(ioctls.get(role, {})) - allowed_ioctls)
    unused_ioctls = sorted(allowed_ioctls - set(ioctls.get(role, {})))
    print("   unused:   " + (" ".join(unused) or "-"))
    if unused_ioctls:
        print("   unused ioctls: " + " ".join(f"{r:#x}" for r in unused_ioctls))
    if missing or missing_ioctls:
        status = 1
        print("   MISSING:  " + " ".join(missing + [f"ioctl {r:#x}" for r in missing_ioctls]))
sys.exit(status)
EOF
[ -z "$keep" ] && rm -rf "$work"
exit $status
