#!/usr/bin/env bash
# Where one cold start of `cordon run` goes, from the kernel's own
# tracepoints (sched and kvm), without instrumenting cordon:
#
#   bash bench/timeline.sh                       examples/hello.wasm
#   bash bench/timeline.sh target/guests/hello   any image or module
#
# Prints the milestones (process starts, the VM's creation, the vCPU's
# start, the guest's exits to userspace and the end) in ms from the
# supervisor's exec, and how many exits the guest made. Needs root and
# perf; tracing adds a little to every step, so read it for shape and
# compare with bench/wasm.sh for the totals.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${1:-examples/hello.wasm}
OUT=target/bench-timeline
mkdir -p "$OUT"
command -v perf >/dev/null || {
    echo "timeline.sh: needs perf (apt-get install linux-perf)" >&2
    exit 2
}
exe=$(cargo build --release -q -p cordon --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/cordon"' | cut -d'"' -f4)
# One run to warm the page cache, then the traced one.
"$exe" run "$TARGET" >/dev/null
perf record -q -o "$OUT/perf.data" -a \
    -e sched:sched_process_exec -e sched:sched_process_fork -e sched:sched_process_exit \
    -e kvm:kvm_write_tsc_offset -e kvm:kvm_userspace_exit -e kvm:kvm_pio \
    -- "$exe" run "$TARGET" >/dev/null
perf script -i "$OUT/perf.data" -F comm,pid,tid,time,event,trace 2>/dev/null >"$OUT/trace.txt"

python3 - "$OUT/trace.txt" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
    if m:
        comm, pid, tid, t, event, rest = m.groups()
        rows.append((float(t), comm, int(pid), int(tid), event, rest))
start = next(r for r in rows if r[4] == "sched:sched_process_exec")
t0, sup = start[0], start[2]
ms = lambda t: f"{(t - t0) * 1e3:7.2f} ms"
exits, first_exit, forks = 0, None, 0
for t, comm, pid, tid, event, rest in rows:
    if event == "sched:sched_process_exec" and pid != sup:
        print(f"{ms(t)}  exec of a jailed child, pid {pid}")
    elif event == "sched:sched_process_fork" and pid == sup and tid == sup:
        forks += 1
        what = "for the sandbox's namespaces" if forks == 1 else "to spawn a jailed child"
        print(f"{ms(t)}  supervisor forks {what}")
    elif event == "kvm:kvm_write_tsc_offset" and "prev=0" in rest:
        print(f"{ms(t)}  vm process: vCPU created")
    elif event == "kvm:kvm_userspace_exit":
        exits += 1
        if first_exit is None:
            first_exit = t
            print(f"{ms(t)}  guest: first exit to userspace ({rest})")
    elif event == "kvm:kvm_pio" and "0xf4" in rest:
        print(f"{ms(t)}  guest: exit port written")
    elif event == "sched:sched_process_exit" and "group_dead=true" in rest:
        who = "supervisor" if pid == sup else f"pid {pid}"
        print(f"{ms(t)}  {who} ends")
print(f"guest exits to userspace: {exits}")
PY
