#!/usr/bin/env bash
# CPython multiprocessing.Pool(2) with the fork start method (Fixtures/python_pool.py):
# wall time untraced and under `cowtrace -q --engine ENGINE` (target: within 3x), with the
# pages copied and the full sweeps cowtrace needed.
# Usage (root, package root): Benchmarks/python_pool.sh [ENGINE]   (default: fault)
set -euo pipefail
source "$(dirname "$0")/common.sh"
engine=${1:-fault}
now() { date +%s.%N; }
best=1000
for _ in 1 2 3; do
  s=$(now); timeout 300 python3 Fixtures/python_pool.py; e=$(now)
  best=$(python3 -c "print(min($best, $e - $s))")
done
s=$(now); timeout 600 "$cowtrace" -q --engine "$engine" --json "$work/p.json" -o "$work/p.log" python3 Fixtures/python_pool.py; code=$?; e=$(now)
python3 - "$best" "$s" "$e" "$code" "$work/p.json" "$work/p.log" "$engine" <<'PY'
import json, sys
u, s, e, code, path, log, engine = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
summary = [json.loads(l) for l in open(path) if '"summary"' in l][-1]
t = e - s
sweeps = [l.strip() for l in open(log) if "full sweeps" in l]
print(f"untraced {u:.2f} s; cowtrace -q --engine {engine} {t:.2f} s (exit {code}): {t / u:.2f}x (target <= 3x) -> {'within' if t <= 3 * u else 'OVER'}")
print(f"  {summary['splits']} pages copied, {len(summary['clones'])} clones; {sweeps[-1] if sweeps else ''}")
PY
