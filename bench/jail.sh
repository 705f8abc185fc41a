#!/usr/bin/env bash
# The jail's cost on a cold start: `cordon run --no-jail` against `cordon
# run` (the whole jail), alternating in the same run, with one jailed
# process (hello: the vm) and with three (--console --rng: the vm and the
# console and rng device processes); then src/bin/jail_layers.rs for the
# cost of each layer. Target: the jail adds <= 1 ms per process.
#
#   bash bench/jail.sh                       from the repository root, as root
#   RUNS=60 PAUSE_MS=50 LAYER_RUNS=100 bash bench/jail.sh
#
# Every run is timed by hyperfine -N, as in bench/run.sh, after PAUSE_MS of
# idle (hyperfine --prepare): a cold start. Back to back, a run would find
# the kernel's cgroup migration lock still warm from the run before (see
# README.md). Writes hyperfine's JSON and the report to
# <target dir>/bench/jail/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-40}
PAUSE_MS=${PAUSE_MS:-50}
LAYER_RUNS=${LAYER_RUNS:-50}
echo "command: ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR=$CARGO_TARGET_DIR }RUNS=$RUNS PAUSE_MS=$PAUSE_MS LAYER_RUNS=$LAYER_RUNS bash bench/jail.sh"
if ((RUNS < 10)); then
    echo "jail.sh: RUNS must be at least 10" >&2
    exit 2
fi
if (($(id -u) != 0)); then
    echo "jail.sh: must run as root (the jail and jail_layers create cgroups)" >&2
    exit 2
fi
command -v hyperfine >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
}

# Where cargo puts the binaries and the guests (<target dir>/guests, see
# build.rs): ask it.
exe=$(cargo build --release -q -p bench -p cordon --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/jail_layers"' | cut -d'"' -f4)
REL=$(dirname "$exe")
TARGET=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
HELLO=$TARGET/guests/hello
OUT=$TARGET/bench/jail
rm -rf "$OUT" && mkdir -p "$OUT"
CORDON="$REL/cordon run"
names=(no-jail jail no-jail-3 jail-3)
cmds=("$CORDON --no-jail $HELLO" "$CORDON $HELLO"
    "$CORDON --no-jail --console --rng $HELLO" "$CORDON --console --rng $HELLO")
for i in "${!cmds[@]}"; do
    ${cmds[$i]} >/dev/null 2>"$OUT/check.err" || {
        echo "jail.sh: '${cmds[$i]}' failed:" >&2
        cat "$OUT/check.err" >&2
        exit 1
    }
done

# One hyperfine call per round, each command once, the order reversed every
# other round; round 0 is a warm-up and is not counted.
load=$(cut -d' ' -f1-3 /proc/loadavg)
pause=$(printf '0.%03d' "$PAUSE_MS")
((PAUSE_MS < 1000)) || pause=$((PAUSE_MS / 1000))
for round in $(seq 0 "$RUNS"); do
    order=(0 1 2 3)
    ((round % 2)) && order=(3 2 1 0)
    args=()
    for i in "${order[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
    hyperfine -N --runs 1 --prepare "sleep $pause" --style none \
        --export-json "$OUT/round-$round.json" "${args[@]}" >/dev/null
done
rm "$OUT/round-0.json"

kvm=unknown
for m in kvm_pvm kvm_intel kvm_amd; do
    if [[ -d /sys/module/$m ]]; then kvm=$m && break; fi
done
favor=no
grep -q favordynmods /proc/mounts && favor=yes
{
    echo "cordon jail benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), load average at start: $load"
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) CPUs)"
    echo "kernel $(uname -r), KVM: $kvm, favordynmods mount option: $favor, rcu_expedited: $(cat /sys/kernel/rcu_expedited 2>/dev/null || echo '?')"
    echo "$(hyperfine --version), -N, alternating, $RUNS runs each, ${PAUSE_MS} ms idle before each"
    echo
    python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
times = {}
for path in glob.glob(f"{sys.argv[1]}/round-*.json"):
    for r in json.load(open(path))["results"]:
        times.setdefault(r["command"], []).extend(r["times"])
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
print("| cordon run | no jail ms | jail ms | jail - no jail ms | jailed processes | per process ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
rows = [("hello", "", 1), ("--console --rng hello", "-3", 3)]
diff = {}
for label, suffix, n in rows:
    off, on = med["no-jail" + suffix], med["jail" + suffix]
    diff[n] = on - off
    print(f"| {label} | {off:.2f} | {on:.2f} | {on - off:.2f} | {n} | {(on - off) / n:.2f} |")
marginal = (diff[3] - diff[1]) / 2
print()
print(f"two-point split: each jailed process beyond the first adds {marginal:.2f} ms;")
print(f"the first process and the sandbox together {diff[1]:.2f} ms (the per-sandbox share: {diff[1] - marginal:.2f} ms)")
PY
    echo
    "$REL/jail_layers" --runs "$LAYER_RUNS" --pause-ms "$PAUSE_MS"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/report.txt"
