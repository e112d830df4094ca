#!/usr/bin/env bash
# CPython multiprocessing.Pool(2) with the fork start method (Fixtures/python_pool.py):
# wall time untraced and under `cowtrace -q --engine ENGINE` (target: within 3x), with the
# pages copied and the full sweeps cowtrace needed. Untraced and traced runs alternate,
# RUNS times each (default 3); the best of each is compared.
# The interpreter is run directly (sys.executable): a version manager's `python3` may be a
# shim script (pyenv's runs bash and a few programs, then execs the interpreter), whose
# processes would be traced too and are not the Pool case.
# Usage (root, package root): Benchmarks/python_pool.sh [ENGINE]   (default: fault)
set -euo pipefail
source "$(dirname "$0")/common.sh"
engine=${1:-fault}
runs=${RUNS:-3}
python=$(python3 -c 'import sys; print(sys.executable)')
now() { date +%s.%N; }
best_u=1000
best_t=1000
code=0
for _ in $(seq "$runs"); do
  s=$(now); timeout 300 "$python" Fixtures/python_pool.py; e=$(now)
  best_u=$(python3 -c "print(min($best_u, $e - $s))")
  s=$(now); timeout 600 "$cowtrace" -q --engine "$engine" --json "$work/p.json" -o "$work/p.log" "$python" Fixtures/python_pool.py || code=$?; e=$(now)
  best_t=$(python3 -c "print(min($best_t, $e - $s))")
done
python3 - "$best_u" "$best_t" "$code" "$work/p.json" "$work/p.log" "$engine" "$python" <<'PY'
import json, sys
u, t, code, path, log, engine, python = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
summary = [json.loads(l) for l in open(path) if '"summary"' in l][-1]
sweeps = [l.strip() for l in open(log) if "full sweeps" in l]
print(f"{python}: untraced {u:.2f} s; cowtrace -q --engine {engine} {t:.2f} s (exit {code}): {t / u:.2f}x (target <= 3x) -> {'within' if t <= 3 * u else 'OVER'}")
print(f"  {summary['splits']} pages copied, {len(summary['clones'])} clones; {sweeps[-1] if sweeps else ''}")
PY
