#!/usr/bin/env bash
# cordon against its floor (bench/src/bin/floor.rs: the least a KVM program
# must do to run a Guest ABI v1 guest) and against QEMU microvm.
#
#   bash bench/run.sh               from the repository root
#   RUNS=50 bash bench/run.sh       more runs (at least 20)
#   bash bench/run.sh --no-cordon   only the floor and QEMU (cordon not built)
#
# Writes hyperfine's JSON and the report to target/bench/. Needs root (or
# access to /dev/kvm), hyperfine and qemu-system-x86 (installed with apt-get
# when missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-20}
EXIT_RUNS=${EXIT_RUNS:-20}
WRITES=100000 # guest-images/bench/port-writes makes this many
WITH_CORDON=1
[[ ${1:-} == --no-cordon ]] && WITH_CORDON=0
if ((RUNS < 20 || EXIT_RUNS < 20)); then
    echo "run.sh: RUNS and EXIT_RUNS must be at least 20" >&2
    exit 2
fi

OUT=target/bench
GUESTS=target/guests
mkdir -p "$OUT"

if ! command -v hyperfine >/dev/null || ! command -v qemu-system-x86_64 >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine qemu-system-x86 >/dev/null
fi

# Where cargo puts the binaries (target/release, or target/<triple>/release
# when .cargo/config.toml names a build target): ask it.
packages=(-p bench)
((WITH_CORDON)) && packages+=(-p cordon)
floor_exe=$(cargo build --release -q "${packages[@]}" --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/floor"' | cut -d'"' -f4)
REL=$(dirname "$floor_exe")

# The QEMU guests (bench/src/bin/mkpvh.rs): a PVH ELF booted by microvm's
# qboot firmware, and a bare firmware image that exits at the reset vector
# (QEMU's own floor). Each writes 33 to isa-debug-exit: QEMU exits 67.
"$REL/mkpvh" --status 33 --out "$OUT/pvh-exit.elf"
"$REL/mkpvh" --status 33 --out "$OUT/pvh-loop.elf" --port-writes "$WRITES"
"$REL/mkpvh" --out "$OUT/pvh-hold.elf" --hold
"$REL/mkpvh" --status 33 --out "$OUT/fw-exit.bin" --firmware
QEMU="qemu-system-x86_64 -nodefaults -no-user-config -nographic -accel kvm"
QEMU+=" -M microvm,x-option-roms=off,pit=off,pic=off,isa-serial=off,rtc=off,acpi=off,memory-backend=ram"
QEMU+=" -cpu qemu64,pni=off -m 64 -object memory-backend-memfd,id=ram,size=64M"
QEMU+=" -device isa-debug-exit,iobase=0xf4,iosize=4"

CORDON="$REL/cordon run"
FLOOR="$REL/floor"

# Each command once, with its exit status checked: hyperfine below has to
# ignore exit codes for QEMU (the reporter checks every run's code).
check() { # expected-status command...
    local want=$1 got=0
    shift
    "$@" >/dev/null 2>"$OUT/check.err" || got=$?
    if ((got != want)); then
        echo "run.sh: '$*' exited $got, expected $want:" >&2
        cat "$OUT/check.err" >&2
        exit 1
    fi
}
check 0 $FLOOR
check 0 $FLOOR --port-writes 1000
check 67 $QEMU -kernel "$OUT/pvh-exit.elf"
check 67 $QEMU -bios "$OUT/fw-exit.bin"
if ((WITH_CORDON)); then
    for guest in hello exit-now port-writes spin; do
        [[ -f $GUESTS/$guest ]] || { echo "run.sh: $GUESTS/$guest is missing" >&2; exit 1; }
    done
    check 0 $CORDON "$GUESTS/hello"
fi

# A busy machine skews every figure: say how busy it was.
load=$(cut -d' ' -f1-3 /proc/loadavg)
HF=(hyperfine -N --ignore-failure --warmup 3 --style basic)
start=()
exits=()
if ((WITH_CORDON)); then
    start+=(-n cordon "$CORDON $GUESTS/hello")
    # The floor's own work (exit at once): cordon's overhead alone.
    start+=(-n cordon-exit-now "$CORDON $GUESTS/exit-now")
    exits+=(-n cordon "$CORDON $GUESTS/port-writes")
fi
start+=(-n floor "$FLOOR" -n qemu "$QEMU -kernel $OUT/pvh-exit.elf")
start+=(-n qemu-fw "$QEMU -bios $OUT/fw-exit.bin")
exits+=(-n floor "$FLOOR --port-writes $WRITES" -n qemu "$QEMU -kernel $OUT/pvh-loop.elf")
"${HF[@]}" --runs "$RUNS" --export-json "$OUT/start.json" "${start[@]}"
"${HF[@]}" --runs "$EXIT_RUNS" --export-json "$OUT/exits.json" "${exits[@]}"

# Memory: smaps of each process 0.5 s into a guest that stays alive.
: >"$OUT/memory.tsv"
record() { # name pid
    local kib
    kib=$("$REL/report" smaps "$2")
    printf '%s\t%s\n' "$1" "$kib" >>"$OUT/memory.tsv"
}
stop() { # pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
if ((WITH_CORDON)); then
    $CORDON --timeout 5 "$GUESTS/spin" >/dev/null 2>&1 &
    sup=$!
    sleep 0.5
    vm=""
    for child in $(cat /proc/"$sup"/task/*/children 2>/dev/null); do
        args=$(tr '\0' ' ' </proc/"$child"/cmdline 2>/dev/null || true)
        if [[ $args == *" vm"* || -z $vm ]]; then vm=$child; fi
    done
    record "cordon supervisor" "$sup"
    if [[ -n $vm ]]; then record "cordon vm" "$vm"; else echo "run.sh: no vm process found" >&2; fi
    stop "$sup"
fi
$FLOOR --hold-ms 3000 &
pid=$!
sleep 0.5
record floor "$pid"
stop "$pid"
$QEMU -kernel "$OUT/pvh-hold.elf" >/dev/null 2>&1 &
pid=$!
sleep 0.5
record qemu "$pid"
stop "$pid"

kvm=unknown
for m in kvm_pvm kvm_intel kvm_amd; do
    if [[ -d /sys/module/$m ]]; then kvm=$m && break; fi
done
{
    echo "cordon benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), load average at start: $load"
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) CPUs)"
    echo "kernel $(uname -r), KVM: $kvm"
    echo "$(hyperfine --version), $(qemu-system-x86_64 --version | head -n1)"
    echo "hyperfine -N --warmup 3 --runs $RUNS (exit round trip: --runs $EXIT_RUNS)"
    echo
    "$REL/report" table "$OUT" --writes "$WRITES"
} | tee "$OUT/report.txt"
