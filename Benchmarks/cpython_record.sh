#!/usr/bin/env bash
# CPython under the record engine: Benchmarks/cpython_fork.py builds 2 million lists, forks a
# worker that runs gc.collect() over them, with and without gc.freeze(). For each: wall time
# untraced and under `cowtrace --engine record` (one run each), the pages cowtrace saw the
# worker copy (x 4 KiB) against the worker's own Private_Dirty (its growth during gc.collect()
# and its value at the end, which counts every page made private since fork), and the functions
# that copied them (the GC's header stores, reference counts).
# Run as root from the package root: Benchmarks/cpython_record.sh [COUNT]
set -euo pipefail
source "$(dirname "$0")/common.sh"
count=${1:-2000000}
now() { date +%s.%N; }

for mode in plain --freeze; do
  args=("$count")
  [ "$mode" = --freeze ] && args=(--freeze "$count")
  s=$(now); untraced=$(python3 Benchmarks/cpython_fork.py "${args[@]}"); e=$(now)
  u_time=$(python3 -c "print($e - $s)")
  s=$(now)
  traced=$("$cowtrace" -q --engine record --json "$work/$mode.json" -o "$work/$mode.log" python3 Benchmarks/cpython_fork.py "${args[@]}")
  e=$(now)
  t_time=$(python3 -c "print($e - $s)")
  python3 - "$mode" "$u_time" "$t_time" "$untraced" "$traced" "$work/$mode.json" <<'PY'
import json, sys, collections
mode, ut, tt, untraced, traced, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
events = [json.loads(l) for l in open(path)]
summary = [e for e in events if e["event"] == "summary"][-1]
worker = int(traced.split()[1])
grown_untraced = int(untraced.split()[-1])
grown = int(traced.split()[-1])
total = int(traced.split()[3])
splits = [e for e in events if e["event"] == "split"]
by_worker = [s for s in splits if s["writer"] == worker]
# Pages copied while the worker ran, by either side (what its Private_Dirty counts).
print(f"{'gc.freeze()' if mode == '--freeze' else 'no freeze'}: wall {ut:.2f} s untraced, {tt:.2f} s under the record engine ({tt / ut:.2f}x)")
print(f"  worker's Private_Dirty: grew {grown} KiB in gc.collect() ({grown_untraced} KiB untraced), {total} KiB at its end")
print(f"  cowtrace: {len(by_worker)} pages copied by the worker = {len(by_worker) * 4} KiB"
      f" ({len(splits)} splits in all, {summary.get('lost_samples')} samples lost);"
      f" {abs(len(by_worker) * 4 - total) / max(total, 1) * 100:.0f}% off the worker's Private_Dirty at its end"
      f" (which also counts pages it allocated)")
sys.path.insert(0, "Benchmarks")
from cowlog import places
where = places(events)
functions = collections.Counter(where(s) for s in by_worker)
for name, pages in functions.most_common(6):
    print(f"    {pages:7d}  {name}")
PY
done
