#!/usr/bin/env bash
# Block I/O: the blkbench guest (guest-images/bench/blkbench) on the same
# 256 MiB image through cordon's block backend and through
# qemu-storage-daemon's vhost-user-blk export, alternating, RUNS times each;
# host dd on the same file as the ceiling. Prints medians (MiB/s, IOPS) and
# the ratios cordon/qemu-storage-daemon (target >= 1.0x).
#
#   bash bench/blk.sh            from the repository root
#   RUNS=9 bash bench/blk.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-5}
OUT=target/bench/blk
mkdir -p "$OUT"
command -v qemu-storage-daemon >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
}
cargo build --release -q -p cordon
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
CORDON="$BIN/x86_64-unknown-linux-gnu/release/cordon"
GUEST=target/guests/blkbench
IMG="$OUT/disk.img"
rm -f "$IMG" && truncate -s 256M "$IMG"
SOCK="$OUT/qsd.sock"
: >"$OUT/results.txt"

run_cordon() { "$CORDON" run --disk "$IMG" "$GUEST"; }
run_qsd() {
    rm -f "$SOCK"
    qemu-storage-daemon --blockdev "driver=file,node-name=f,filename=$IMG" \
        --export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$SOCK,writable=on" &
    local qsd=$!
    while [[ ! -S $SOCK ]]; do sleep 0.01; done
    "$CORDON" run --vhost-user "block:$SOCK" "$GUEST" || { kill $qsd; return 1; }
    kill $qsd && wait $qsd 2>/dev/null || true
}
for i in $(seq "$RUNS"); do
    run_cordon | sed 's/^/cordon /' >>"$OUT/results.txt"
    run_qsd | sed 's/^/qsd /' >>"$OUT/results.txt"
    # Host ceiling on the same file: dd, page cache as the backends see it.
    s=$(date +%s%N); dd if=/dev/zero of="$IMG" bs=1M count=256 conv=notrunc,fdatasync status=none; e=$(date +%s%N)
    echo "dd blkbench: seq-write-1m 268435456 bytes in $(( (e - s) / 1000 )) us" >>"$OUT/results.txt"
    s=$(date +%s%N); dd if="$IMG" of=/dev/null bs=1M status=none; e=$(date +%s%N)
    echo "dd blkbench: seq-read-1m 268435456 bytes in $(( (e - s) / 1000 )) us" >>"$OUT/results.txt"
done

python3 - "$OUT/results.txt" "$RUNS" <<'PY'
import re, statistics, sys, datetime, os, platform
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) blkbench: (\S+) (\d+) (bytes|requests) in (\d+) us", line)
    if m:
        who, test, n, unit, us = m.groups()
        rate = int(n) / 2**20 / (int(us) / 1e6) if unit == "bytes" else int(n) / (int(us) / 1e6)
        rows.setdefault(test, {}).setdefault(who, []).append(rate)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"cordon block benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {cpu}, kernel {platform.release()}")
print(f"medians of {sys.argv[2]} runs; 256 MiB image on {os.statvfs('.').f_bsize}-byte-block fs, page cache")
print(f"{'test':<16}{'cordon':>12}{'qsd':>12}{'dd':>12}{'cordon/qsd':>12}")
for test in ["seq-write-64k", "seq-read-64k", "seq-write-1m", "seq-read-1m", "rand-read-4k"]:
    r = rows.get(test, {})
    med = {k: statistics.median(v) for k, v in r.items()}
    unit = "IOPS" if test.startswith("rand") else "MiB/s"
    fmt = lambda k: f"{med[k]:>12.0f}" if k in med else f"{'-':>12}"
    ratio = med["cordon"] / med["qsd"] if "cordon" in med and "qsd" in med else float("nan")
    print(f"{test:<16}{fmt('cordon')}{fmt('qsd')}{fmt('dd')}{ratio:>11.2f}x  ({unit})")
PY
