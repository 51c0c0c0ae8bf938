#!/usr/bin/env bash
# A/B of increments/s between two shardctl binaries (e.g. before and after a
# change to core::Shard), alternated ROUNDS times in one run, each on a fresh
# `serve --in-memory`: wrk with bench/increment.lua (the default counter) and
# bench/increment_named.lua (NAMES named counters). A benchmark, not a test.
# Usage: bench/table_ab.sh OLD_BINARY NEW_BINARY [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 seconds=${3:-5} rounds=${4:-3}
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill $pid 2>/dev/null; rm -rf "$work"' EXIT

run() {  # binary script -> increments/s
  "$1" serve --in-memory --port 0 --shard-base-port 0 >"$work/out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q " ready " "$work/out" && break; sleep 0.1; done
  local address
  address=$(awk '/aggregator/ {print $NF}' "$work/out")
  wrk -t2 -c32 -d"${seconds}s" -s "$2" "http://$address/increment" |
    awk '/Requests\/sec/ {print $2}'
  kill $pid; wait $pid 2>/dev/null || true; pid=""
}

printf 'round\tscript\told\tnew\n'
for round in $(seq "$rounds"); do
  for script in bench/increment.lua bench/increment_named.lua; do
    a=$(run "$old" $script); b=$(run "$new" $script)
    printf '%s\t%s\t%s\t%s\n' "$round" "$(basename $script)" "$a" "$b"
  done
done
