#!/usr/bin/env bash
# Fault-to-running-again times of the restart policies, from cordon's own
# --events records (release build, jail on):
#
#   bash bench/restart.sh           from the repository root
#   RESTARTS=40 bash bench/restart.sh
#
# The triple-fault guest faults at once on every boot; with
# `--on-vcpu-fault reset-vcpu|reboot --max-restarts RESTARTS` each fault
# is answered by a restart until the budget is spent. For each restart the
# time from the supervisor's fault record to the vm process's next
# "Started" event (every vCPU about to enter the guest) is one sample;
# prints the median, min and max per policy, with and without the virtio
# consoles (a reboot restarts the device processes too). Last, device
# restarts: the console device process of the console-echo guest killed
# RESTARTS times, from the fault record to both consoles reconnected
# (bench/restart_device.py).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESTARTS=${RESTARTS:-30}
OUT=target/bench-restart
mkdir -p "$OUT"
exe=$(cargo build --release -q -p cordon --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/cordon"' | cut -d'"' -f4)
guest=$(dirname "$exe")/../../guests/triple-fault
[[ -e $guest ]] || guest=target/guests/triple-fault

echo "cordon restart benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r)"
echo "command: RESTARTS=$RESTARTS bash bench/restart.sh"
for policy in reset-vcpu reboot; do
    for devices in none console; do
        flags=()
        [[ $devices == console ]] && flags+=(--console)
        events="$OUT/$policy-$devices.jsonl"
        status=0
        "$exe" run "${flags[@]}" --on-vcpu-fault "$policy" --max-restarts "$RESTARTS" \
            --events "$events" "$guest" >/dev/null 2>&1 || status=$?
        if ((status != 120)); then
            echo "restart.sh: $policy ($devices) ended with $status, not 120" >&2
            exit 1
        fi
        python3 - "$events" "$policy" "$devices" <<'PY'
import json, statistics, sys
path, policy, devices = sys.argv[1:]
records = [json.loads(l) for l in open(path)]
samples, fault_at = [], None
for r in records:
    if r["event"] == "fault" and r["action"] != "stop":
        fault_at = r["time"]
    elif r["event"] == "vm" and "Started" in r["vm"] and fault_at is not None:
        samples.append((r["time"] - fault_at) * 1e3)
        fault_at = None
ms = lambda x: f"{x:.2f} ms"
print(f"{policy:<10} devices: {devices:<7} restarts: {len(samples):>3}  "
      f"median {ms(statistics.median(samples))}  min {ms(min(samples))}  max {ms(max(samples))}")
PY
    done
done
python3 bench/restart_device.py "$exe" "$(dirname "$guest")" "$RESTARTS" "$OUT/device.jsonl"
