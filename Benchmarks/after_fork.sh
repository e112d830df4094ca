#!/usr/bin/env bash
# A program's page faults once it shares nothing any more (its one child gone): a first
# touch of 1 GiB (Benchmarks/after_fork.c), untraced and under cowtrace -q (fault engine),
# ROUNDS interleaved (default 5), medians, timed inside the program. The fault engine's
# perf event with its filter is turned off at the tracer's next tick: the program should
# then fault at untraced speed (target: within noise, ~1.0x).
# Run as root from the package root: Benchmarks/after_fork.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
gcc -O1 -o "$work/after_fork" Benchmarks/after_fork.c
touch_cost() { "$@" 2>&1 >/dev/null | awk '/per first touch/ {print $1}' | tail -1; }
untraced=(); traced=()
for _ in $(seq "${ROUNDS:-5}"); do
  untraced+=("$(touch_cost "$work/after_fork")")
  traced+=("$(touch_cost "$cowtrace" -q -o /dev/null "$work/after_fork")")
done
python3 - "${untraced[*]}" "${traced[*]}" <<'PY'
import statistics, sys
u, t = ([float(x) for x in a.split()] for a in sys.argv[1:3])
mu, mt = statistics.median(u), statistics.median(t)
print(f"first touch of 1 GiB after the only child exited, {len(u)} interleaved rounds, medians (us per page):")
print(f"  untraced {mu:.3f}   rounds {u}")
print(f"  cowtrace -q {mt:.3f}   rounds {t}")
print(f"  cowtrace / untraced: {mt / mu:.2f}x")
PY
