#!/usr/bin/env bash
# Command-line parsing is linear in the number of arguments: cowtrace -q on /bin/true with
# 30,000 program arguments, against strace doing the same (best of 3 wall times each).
# Run from the package root: Benchmarks/argv_parse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product cowtrace >/dev/null
cowtrace=$(swift build -c release --show-bin-path)/cowtrace
args=$(seq 30000)
best() {
  local best=1000 s e
  for _ in 1 2 3; do
    s=$(date +%s.%N); "$@" $args >/dev/null 2>&1; e=$(date +%s.%N)
    best=$(python3 -c "print(min($best, $e - $s))")
  done
  echo "$best"
}
s=$(best strace -f -qq -e trace=clone,clone3,fork,vfork /bin/true)
t=$(best "$cowtrace" -q --summary-only /bin/true)
python3 -c "import sys; s,t=float(sys.argv[1]),float(sys.argv[2]); print(f'30000 arguments: strace {s:.3f} s; cowtrace -q {t:.3f} s; ratio {t/s:.2f}x')" "$s" "$t"
