#!/usr/bin/env bash
# Redis BGSAVE under a SET load, untraced and with `cowtrace -q -p` attached (issue 11):
# a redis-server on 127.0.0.1 with a private port and directory, DEBUG POPULATE 500000,
# then BGSAVE while `redis-benchmark -t set` (bounded: -n requests) runs on loopback.
# Prints BGSAVE time and SET throughput traced against untraced (targets: BGSAVE within 3x
# under the fault engine), and cowtrace's pages copied x 4 KiB against Redis's own
# "Fork CoW for RDB: current N MB" log line (target: within 25%). Redis's figure is the
# child's Private_Dirty when it has written the file, in whole MB: pages copied by either
# side since the fork (the child keeps the old frame of a page its parent copied), plus the
# pages the child touched first itself (its buffers), which are no copy.
# Usage (root, package root): Benchmarks/redis_bgsave.sh [ENGINE [cowtrace options...]]
# (default: fault). With --while-shared cowtrace lets go of the server by itself once the
# BGSAVE child is gone (Benchmarks/redis_record.sh); otherwise it is interrupted (SIGINT).
# The SETs go to random keys among as many as were populated (RANGE, a keyspace of their own),
# filled once before the rounds: later rounds mostly overwrite, so the data set, the CoW and
# the BGSAVE time stay about the same from round to round.
# ROUNDS=N (default 3) alternates N untraced and N traced BGSAVEs on the same server and
# prints the best of each and the spread of the per-round ratios. COWTRACE=path traces with
# another build; BASELINE=path adds a third BGSAVE per round traced with that build (an
# older release binary), so both builds are compared under the same load. On a shared
# machine, `nice -n -10 Benchmarks/redis_record.sh` keeps other jobs from deciding the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:-fault}
shift || true
extra=("$@")
keys=${KEYS:-500000}
requests=${REQUESTS:-300000}
rounds=${ROUNDS:-3}
range=${RANGE:-$keys}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
server=""
tracer=""
cleanup() {
  [ -n "$tracer" ] && kill -INT "$tracer" 2>/dev/null && sleep 0.5
  [ -n "$tracer" ] && kill -KILL "$tracer" 2>/dev/null
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
swift build -c release --product cowtrace >/dev/null
cowtrace=${COWTRACE:-$(swift build -c release --show-bin-path)/cowtrace}
baseline=${BASELINE:-}
cli() { timeout 30 redis-cli -h 127.0.0.1 -p "$port" "$@"; }
now() { date +%s.%N; }

redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --dbfilename dump.rdb --save "" --appendonly no \
  --logfile "$work/redis.log" --protected-mode yes --enable-debug-command local >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
cli DEBUG POPULATE "$keys" >/dev/null
redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$range" -c 20 -r "$range" -q >/dev/null 2>&1
echo "redis-server $server on 127.0.0.1:$port, $(cli DBSIZE) keys, engine $engine, $rounds rounds, load: $(uptime | sed 's/.*load average: //')"

# One BGSAVE under load: prints "seconds requests_per_second cow_mb".
bgsave_round() {
  local before s e rps cow bench
  before=$(grep -c "Fork CoW for RDB" "$work/redis.log" || true)
  timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$requests" -c 20 -r "$range" -q >"$work/bench.out" 2>&1 &
  bench=$!
  sleep 0.5
  s=$(now)
  cli BGSAVE >/dev/null
  for _ in $(seq 6000); do
    [ "$(cli INFO persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')" = 0 ] && break
    sleep 0.05
  done
  e=$(now)
  wait "$bench" || true
  rps=$(tr '\r' '\n' <"$work/bench.out" | awk '/^SET: [0-9.]+ requests per second/ {v=$2} END {print v+0}')
  for _ in $(seq 50); do
    [ "$(grep -c "Fork CoW for RDB" "$work/redis.log" || true)" -gt "$before" ] && break
    sleep 0.1
  done
  cow=$(grep "Fork CoW for RDB" "$work/redis.log" | tail -1 | sed -n 's/.*current \([0-9]*\) MB.*/\1/p')
  echo "$(python3 -c "print($e - $s)") ${rps:-0} ${cow:-0}"
}

# One BGSAVE with `$1` attached; the events go to $work/$2.json. Prints bgsave_round's figures
# then the pages cowtrace saw copied.
traced_round() {
  local binary=$1 name=$2 figures splits
  "$binary" -q -p "$server" --engine "$engine" "${extra[@]}" --json "$work/$name.json" -o "$work/$name.log" &
  tracer=$!
  for _ in $(seq 100); do
    grep -q "^TracerPid:[[:space:]]*$tracer" /proc/"$server"/status 2>/dev/null && break
    sleep 0.05
  done
  sleep 0.5
  figures=$(bgsave_round)
  if [[ " ${extra[*]} " == *" --while-shared "* ]]; then
    for _ in $(seq 600); do kill -0 "$tracer" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$tracer" 2>/dev/null && echo "cowtrace did not let go by itself" >&2
  else
    sleep 1
  fi
  kill -INT "$tracer" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$tracer" 2>/dev/null || break; sleep 0.05; done
  tracer=""
  [ "$(awk '/^TracerPid/ {print $2}' /proc/$server/status)" = 0 ] || echo "server still traced" >&2
  splits=$(python3 -c 'import json,sys
s=[json.loads(l) for l in open(sys.argv[1]) if "\"summary\"" in l]
print(s[-1]["splits"] if s else -1)' "$work/$name.json")
  echo "$figures $splits"
}

: >"$work/rounds"
for round in $(seq "$rounds"); do
  read -r u_time u_rps u_cow < <(bgsave_round)
  echo "round $round untraced: BGSAVE $u_time s, SET $u_rps req/s, Redis CoW $u_cow MB"
  echo "untraced $u_time $u_rps $u_cow 0" >>"$work/rounds"
  variants=(new)
  [ -n "$baseline" ] && { ((round % 2)) && variants=(new base) || variants=(base new); }
  for variant in "${variants[@]}"; do
    binary=$cowtrace
    [ "$variant" = base ] && binary=$baseline
    read -r t_time t_rps t_cow t_splits < <(traced_round "$binary" "$variant$round")
    echo "round $round cowtrace${baseline:+ ($variant)}: BGSAVE $t_time s, SET $t_rps req/s, Redis CoW $t_cow MB, cowtrace $t_splits pages copied"
    echo "$variant $t_time $t_rps $t_cow $t_splits" >>"$work/rounds"
  done
done
grep -h "full sweeps" "$work"/new*.log | tail -1 | sed 's/^ */  /'
python3 - "$work/rounds" "$engine" "$work/new$rounds.json" "$server" <<'PY'
import sys, json, collections
rows = [l.split() for l in open(sys.argv[1])]
engine, events_path, server = sys.argv[2], sys.argv[3], int(sys.argv[4])
by = collections.defaultdict(list)
for name, t, rps, cow, splits in rows:
    by[name].append((float(t), float(rps), float(cow), int(splits)))
untraced = by.pop("untraced")
bu_t, bu_r = min(r[0] for r in untraced), max(r[1] for r in untraced)
print(f"untraced: best BGSAVE {bu_t:.3f} s, best SET {bu_r:.0f} req/s")
for name, runs in by.items():
    label = f"--engine {engine}" + (f" ({name})" if len(by) > 1 else "")
    # Per-round ratios: each traced BGSAVE against the untraced one just before it.
    t_ratios = [r[0] / u[0] for r, u in zip(runs, untraced)]
    r_ratios = [r[1] / u[1] if u[1] else 0 for r, u in zip(runs, untraced)]
    bt, br = min(r[0] for r in runs), max(r[1] for r in runs)
    median = lambda v: sorted(v)[len(v) // 2]
    print(f"{label}: BGSAVE best {bt:.3f} s = {bt / bu_t:.2f}x untraced's best (per round {min(t_ratios):.2f}-{max(t_ratios):.2f}x, median {median(t_ratios):.2f}x); "
          f"SET best {br:.0f} req/s = {br / bu_r:.2f}x (per round {min(r_ratios):.2f}-{max(r_ratios):.2f}x, median {median(r_ratios):.2f}x) (goal: within 1.3x)")
    offs = []
    for t, rps, cow, splits in runs:
        mb = splits * 4096 / 1048576
        offs.append((abs(mb - cow) / cow if cow > 0 else float("inf"), mb, cow))
    print(f"  pages copied x 4 KiB against Redis's CoW figure, per round: " +
          ", ".join(f"{mb:.1f} vs {cow:.0f} MB ({off * 100:.0f}% off)" for off, mb, cow in offs) +
          f" (target <= 25%) -> {'within' if all(o[0] <= 0.25 for o in offs) else 'OVER in some round'}")
events = [json.loads(l) for l in open(events_path)]
summary = [e for e in events if e["event"] == "summary"]
if summary and summary[-1].get("lost_samples") is not None:
    print(f"samples lost (last round): {summary[-1]['lost_samples']}")
sys.path.insert(0, "Benchmarks")
from cowlog import places
where = places(events)
for who, pick in (("parent", lambda s: s["writer"] == server), ("child", lambda s: s["writer"] != server)):
    functions = collections.Counter(where(s) for s in events if s["event"] == "split" and pick(s))
    print(f"  top functions copying pages in the {who} (last round): " + ", ".join(f"{n} {c}" for n, c in functions.most_common(5)))
PY
