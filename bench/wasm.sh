#!/usr/bin/env bash
# cordon's Wasm launcher against the wasmi CLI of the same wasmi version
# (the reference the runtime embeds), on the same modules, in one run:
#
#   bash bench/wasm.sh              from the repository root
#   RUNS=40 COMPUTE_RUNS=5 bash bench/wasm.sh
#
# 1. cold start: `cordon run examples/hello.wasm` against `wasmi
#    examples/hello.wasm`, process start to exit (hyperfine -N, medians of
#    RUNS >= 20 runs). Target: <= 1.5x the wasmi CLI.
# 2. compute: tests/wasi-c/compute.c (primes by trial division) sized to run
#    about 5 s, medians of COMPUTE_RUNS. Target: <= 1.05x.
# 3. stdout: bench/wasm/stdout.c writes 100 MiB in 64 KiB writes, to
#    /dev/null. Target: >= 200 MB/s.
# The jail is on (the default). Needs root or /dev/kvm, hyperfine, clang
# with wasi-libc (installed when missing), and the wasmi CLI (installed
# into target/tools/wasmi when missing). Output in target/bench-wasm/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-30}
COMPUTE_RUNS=${COMPUTE_RUNS:-3}
PRIMES_BELOW=${PRIMES_BELOW:-7000000}
if ((RUNS < 20)); then
    echo "wasm.sh: RUNS must be at least 20" >&2
    exit 2
fi
OUT=target/bench-wasm
mkdir -p "$OUT"

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[[ -e /usr/lib/wasm32-wasi/libc.a ]] || need+=(clang lld wasi-libc libclang-rt-14-dev-wasm32)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo install -q wasmi_cli --version =2.0.0 --locked --root target/tools/wasmi
WASMI=target/tools/wasmi/bin/wasmi
exe=$(cargo build --release -q -p cordon --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/cordon"' | cut -d'"' -f4)
CORDON="$exe run"
for m in compute stdout; do
    src=tests/wasi-c/$m.c
    [[ $m == stdout ]] && src=bench/wasm/stdout.c
    clang --target=wasm32-wasi --sysroot=/usr -O2 -o "$OUT/$m.wasm" "$src"
done

echo "cordon Wasm benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r)"
echo "command: RUNS=$RUNS COMPUTE_RUNS=$COMPUTE_RUNS bash bench/wasm.sh"

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/start.json" \
    -n wasmi "$WASMI examples/hello.wasm" \
    -n cordon "$CORDON examples/hello.wasm" >/dev/null
hyperfine -N --warmup 1 --runs "$COMPUTE_RUNS" --export-json "$OUT/compute.json" \
    -n wasmi "$WASMI $OUT/compute.wasm $PRIMES_BELOW" \
    -n cordon "$CORDON $OUT/compute.wasm -- $PRIMES_BELOW" >/dev/null
# hyperfine -N sends stdout to /dev/null.
hyperfine -N --warmup 1 --runs 5 --export-json "$OUT/stdout.json" \
    -n wasmi "$WASMI $OUT/stdout.wasm" \
    -n cordon "$CORDON $OUT/stdout.wasm" >/dev/null

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def medians(name):
    runs = json.load(open(f"{out}/{name}.json"))["results"]
    return {r["command"]: statistics.median(r["times"]) for r in runs}
start, compute, stdout = medians("start"), medians("compute"), medians("stdout")
mb = 100 * 2**20 / 1e6
rows = [
    ("cold start, hello.wasm", f"{start['cordon']*1e3:.2f} ms", f"{start['wasmi']*1e3:.2f} ms",
     start["cordon"] / start["wasmi"], "<= 1.5x", start["cordon"] / start["wasmi"] <= 1.5),
    ("compute, primes (about 5 s)", f"{compute['cordon']:.3f} s", f"{compute['wasmi']:.3f} s",
     compute["cordon"] / compute["wasmi"], "<= 1.05x", compute["cordon"] / compute["wasmi"] <= 1.05),
    ("stdout, 100 MiB in 64 KiB writes", f"{mb/stdout['cordon']:.0f} MB/s", f"{mb/stdout['wasmi']:.0f} MB/s",
     stdout["wasmi"] / stdout["cordon"], ">= 200 MB/s", mb / stdout["cordon"] >= 200),
]
print("| what | cordon | wasmi CLI | cordon/wasmi | target |")
print("|---|---|---|---|---|")
for what, c, w, ratio, target, met in rows:
    print(f"| {what} | {c} | {w} | {ratio:.2f}x | {target}: {'met' if met else 'MISSED'} |")
print("(medians; for stdout the ratio is of times, cordon's over wasmi's)")
PY
