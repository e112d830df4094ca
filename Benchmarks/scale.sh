#!/usr/bin/env bash
# Scale figures (issue 11), each printed with its ratio or bound:
#  1. 3000 children forked one after another, each writing one page and exiting
#     (Fixtures/many_children.c): cost per child over untraced (target <= 1 ms) and
#     cowtrace's peak RSS (target <= 100 MiB);
#  2. 64 GiB and 16 TiB MAP_NORESERVE reservations with 8 pages present
#     (Fixtures/huge_reserve.c): wall time (target < 1 s), peak RSS (target <= 64 MiB), exit
#     status (no crash, the program's one split found);
#  3. the 585-process tree (Benchmarks/process_tree.sh), 200 x /bin/true from a shell and a
#     make of 100 shell recipes:
#     cowtrace -q against strace -f -qq -e trace=clone,clone3,fork,vfork,execve (target <= 1x);
#  4. 262,144 splits (a child writing 1 GiB): the text log's write rate against dd to the
#     same disk.
# Run as root from the package root: Benchmarks/scale.sh [SECTION...] (all four by default).
# BASELINE=/path/to/an/older/cowtrace adds its figures for 1 and 3, measured back to back
# with this tree's in the same run (before/after on the same machine load).
set -euo pipefail
source "$(dirname "$0")/common.sh"
sections=${*:-1 2 3 4}
want() { [[ " $sections " == *" $1 "* ]]; }
# The binaries measured for 1 and 3: this tree's, and the baseline's if given.
tracers=("$cowtrace")
names=("cowtrace")
if [[ -n "${BASELINE:-}" ]]; then tracers+=("$BASELINE"); names+=("baseline"); fi
for f in many_children huge_reserve many_pages; do gcc -O0 -g -no-pie -o "$work/$f" Fixtures/$f.c; done
gcc -O0 -g -no-pie -DPAGES=262144 -o "$work/gig_pages" Fixtures/many_pages.c

now() { date +%s.%N; }
runs=${RUNS:-3}
# Best of N wall times: this VM's noise is as large as some effects measured.
timed() {
  local best=1000 s e
  for _ in $(seq $runs); do
    s=$(now); "$@" >/dev/null 2>&1 || true; e=$(now)
    best=$(python3 -c "print(min($best, $e - $s))")
  done
  echo "$best"
}
# Peak RSS of cowtrace itself in KiB (VmHWM; GNU time would fold in the tracees'), and its exit status.
peak() { Benchmarks/peak_rss.py "$@"; }

if want 1; then
echo "1. 3000 children, one page written each"
u=$(timed "$work/many_children" 3000)
for k in "${!tracers[@]}"; do
t=$(timed "${tracers[$k]}" -q -o "$work/c.log" "$work/many_children" 3000)
read -r rss status < <(peak "${tracers[$k]}" -q -o "$work/c.log" "$work/many_children" 3000)
python3 - "$u" "$t" "$rss" "$status" "${names[$k]}" <<'PY'
import sys
u, t, rss, status, name = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
per = (t - u) / 3000 * 1e3
print(f"   untraced {u:.3f} s; {name} -q {t:.3f} s ({t / u:.1f}x): {per:.2f} ms per child over untraced (target <= 1 ms) -> {'within' if per <= 1 else 'OVER'}")
print(f"   {name} peak RSS {rss / 1024:.1f} MiB (target <= 100 MiB) -> {'within' if rss <= 100 * 1024 else 'OVER'}; exit status {status}")
PY
done
fi

if want 2; then
echo "2. NORESERVE reservations, 8 pages present, one split"
for gib in 64 16384; do
  s=$(now); "$cowtrace" -q --json "$work/r.json" "$work/huge_reserve" $gib >/dev/null 2>"$work/r.log"; code=$?; e=$(now)
  read -r rss _ < <(peak "$cowtrace" -q -o /dev/null "$work/huge_reserve" $gib)
  store=$(nm "$work/huge_reserve" | awk '/ reserve_store$/ {print "0x" substr($1, match($1, /[1-9a-f]/))}')
  found=$(grep "\"event\":\"split\"" "$work/r.json" | grep -c "\"ip\":\"$store\"" || true)
  python3 - "$gib" "$s" "$e" "$rss" "$code" "$found" <<'PY'
import sys
gib, s, e, rss, code, found = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
size = f"{gib // 1024} TiB" if gib >= 1024 else f"{gib} GiB"
t = e - s
ok = t < 1 and rss <= 64 * 1024 and code == "0" and found == "1"
print(f"   {size}: {t:.3f} s (target < 1 s), peak RSS {rss / 1024:.1f} MiB (target <= 64 MiB), exit {code}, reserve_store split found {found}x -> {'within' if ok else 'OVER'}")
PY
done
fi

if want 3; then
echo "3. process trees: cowtrace -q against strace -f (clone-family and execve only)"
tree() {
  local name=$1; shift
  local u s t k
  u=$(timed "$@")
  s=$(timed strace -f -qq -e trace=clone,clone3,fork,vfork,execve -o /dev/null "$@")
  for k in "${!tracers[@]}"; do
    t=$(timed "${tracers[$k]}" -q -o /dev/null "$@")
    python3 -c "import sys; n,c,u,s,t=sys.argv[1],sys.argv[2],*map(float,sys.argv[3:]); print(f'   {n}: untraced {u:.3f} s, strace {s:.3f} s, {c} -q {t:.3f} s: {t/s:.2f}x strace (target <= 1.0x)')" "$name" "${names[$k]}" "$u" "$s" "$t"
  done
}
tree "585-process tree" Benchmarks/process_tree.sh
tree "200 x /bin/true" bash -c 'for i in $(seq 200); do /bin/true; done'
need make
# make: each recipe is a shell of its own (a new program, a new address-space layout) that
# forks its commands.
python3 - "$work/Makefile" <<'PY'
import sys
n = 100
rules = "\n".join(f"t{i}:\n\t@/bin/true; echo {i} | /bin/cat >/dev/null" for i in range(n))
targets = " ".join(f"t{i}" for i in range(n))
open(sys.argv[1], "w").write(f".PHONY: all {targets}\nall: {targets}\n{rules}\n")
PY
tree "make, 100 recipes" make -s -f "$work/Makefile"
fi

want 4 || exit 0
echo "4. 262,144 splits (a child writing 1 GiB): the text log against --summary-only"
runs=1
u=$(timed "$work/gig_pages")
q=$(timed "$cowtrace" -q --summary-only -o /dev/null "$work/gig_pages")
t=$(timed "$cowtrace" -q -o "$work/big.log" "$work/gig_pages")
bytes=$(stat -c %s "$work/big.log")
s=$(now); dd if=/dev/zero of="$work/dd.out" bs=1M count=$((bytes / 1048576 + 1)) conv=fsync status=none; e=$(now)
read -r rss _ < <(peak "$cowtrace" -q --summary-only -o /dev/null "$work/gig_pages")
python3 - "$u" "$q" "$t" "$bytes" "$s" "$e" "$rss" <<'PY'
import sys
u, q, t, b, s, e, rss = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
dd = b / (e - s) / 1e6
extra = max(t - q, 1e-3)
print(f"   untraced {u:.2f} s; --summary-only {q:.2f} s ({q / u:.1f}x); with the text log {t:.2f} s: {b / 1e6:.0f} MB of log for {t - q:+.2f} s")
print(f"   log written at {b / extra / 1e6:.0f} MB/s of extra time (dd to the same disk: {dd:.0f} MB/s)")
print(f"   --summary-only peak RSS {rss / 1024:.1f} MiB (262,144 pages shared, then copied)")
PY
