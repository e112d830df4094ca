#!/usr/bin/env bash
# Stepping rate of cowtrace's step engine against a plain C loop doing the same ptrace
# work (PTRACE_SINGLESTEP + waitpid + one pagemap pread per step) on the same program.
# Prints both rates and the ratio. Run as root from the package root:
#   Benchmarks/step_rate.sh [ITERATIONS]
set -euo pipefail
source "$(dirname "$0")/common.sh"
iterations=${1:-50000}
gcc -O2 -o "$work/step_baseline" Benchmarks/step_baseline.c
gcc -O0 -no-pie -o "$work/step_bench" Fixtures/step_bench.c
page=0x$(nm "$work/step_bench" | awk '$3 == "watched" { print $1 }')

read -r _ c_steps _ c_seconds < <("$work/step_baseline" "$page" "$work/step_bench" "$iterations")

start=$(date +%s.%N)
"$cowtrace" -q --engine step --watch "$page" --json "$work/events.json" "$work/step_bench" "$iterations" 2>/dev/null
end=$(date +%s.%N)
swift_steps=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "\"summary\"" in l][-1]["steps"])' "$work/events.json")

python3 - "$c_steps" "$c_seconds" "$swift_steps" "$start" "$end" <<'PY'
import sys
c_steps, c_seconds, s_steps, start, end = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
s_seconds = end - start
c_rate, s_rate = c_steps / c_seconds, s_steps / s_seconds
print(f"C loop:    {c_steps} steps in {c_seconds:.2f} s = {c_rate:,.0f} steps/s")
print(f"cowtrace:  {s_steps} steps in {s_seconds:.2f} s = {s_rate:,.0f} steps/s (whole run, startup included)")
print(f"ratio:     {s_rate / c_rate:.2f}x (target >= 0.80x)")
PY
