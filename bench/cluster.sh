#!/usr/bin/env bash
# Benchmark: a shardctl cluster on this machine, with etcd, every node on its own loopback
# address (127.0.0.11, 127.0.0.12, ...):
#   1. moving a shard that holds 1,000,000 counters (the copy, and the pause of its writes);
#   2. the write pause of moves under load: MOVES moves of one shard back and forth between two
#      nodes while `shardctl bench` writes to the cluster; p50, p99 and max of the pauses
#      `cluster move` reports, and the latency bench saw;
#   3. increments/s through a cluster aggregator with 1 node and with 3 nodes (16 shards; wrk,
#      16 connections, values 1..60 so every shard gets writes), and Redis INCR (redis-benchmark,
#      16 connections) in the same run: medians of ROUNDS rounds, interleaved;
#   4. the latency of GET /total with 1, 4 and 16 nodes (16 shards): the fan-out cost, charted.
# The raw results go to bench/results/cluster.tsv, the chart to bench/results/cluster-total.png.
# A benchmark, not a test: CI does not run it.
# Usage: bench/cluster.sh [SECONDS_PER_LOAD] [ROUNDS]    (default 5 3; COUNTERS=1000000 MOVES=20)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${1:-5}
rounds=${2:-3}
counters=${COUNTERS:-1000000}
moves=${MOVES:-20}
results_dir=${RESULTS_DIR:-bench/results}

bash .ci/setup
need=()
for tool in redis-server redis-benchmark gnuplot wrk; do command -v $tool >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    redis-server redis-tools gnuplot-nox wrk >&2
fi
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDCTL_BUILD_TESTS=OFF \
  -DSHARDCTL_BUILD_BENCH=ON >/dev/null
cmake --build build/bench >/dev/null
shardctl=$repo/build/bench/shardctl
loader=$repo/build/bench/bench/bench_load_counters

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local port
  while true; do
    port=$((10000 + RANDOM % 20000))
    port_in_use $port || port_in_use $((port + 1)) || { echo $port; return; }
  done
}
wait_line() {  # file pattern pid
  local tries=0
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { echo "exited:" >&2; cat "$1" >&2; exit 1; }
    ((++tries > 1200)) && { echo "not ready after 60 s:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
percentile() {  # p: the p-th percentile (nearest rank) of the numbers on stdin
  sort -g | awk -v p="$1" '{v[NR]=$1} END {r=int((p*NR+99)/100); if (r<1) r=1; print v[r]}'
}

# A fresh etcd and cluster: start_cluster SHARDS NODES [serve options]; sets $etcd, $aggregator.
cluster_pids=()
start_cluster() {
  local shards=$1 nodes=$2 n out client peer
  shift 2
  stop_cluster
  client=$(free_port); peer=$((client + 1))
  mkdir -p "$work/etcd-$client"
  etcd --data-dir "$work/etcd-$client" --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "default=http://127.0.0.1:$peer" >"$work/etcd-$client.log" 2>&1 &
  pids+=($!); cluster_pids+=($!)
  etcd="http://127.0.0.1:$client"
  until curl -sf "$etcd/health" >/dev/null; do sleep 0.1; done
  "$shardctl" cluster init --etcd "$etcd" --shards "$shards" >/dev/null
  for ((n = 1; n <= nodes; n++)); do
    out="$work/node-$n-$RANDOM.out"
    "$shardctl" serve --etcd "$etcd" --bind "127.0.0.$((10 + n))" --port 0 --node-id "n$n" \
      --data-dir "$work/data-$client-$n" "$@" >"$out" 2>&1 &
    pids+=($!); cluster_pids+=($!)
    wait_line "$out" "node listening" $!
  done
  out="$work/aggregator-$RANDOM.out"
  "$shardctl" serve --role aggregator --etcd "$etcd" --port 0 >"$out" 2>&1 &
  pids+=($!); cluster_pids+=($!)
  wait_line "$out" "aggregator listening" $!
  aggregator=$(awk '/aggregator listening/ {print $NF}' "$out")
  [ "$nodes" -le 1 ] || "$shardctl" cluster rebalance --etcd "$etcd" >/dev/null
}
stop_cluster() {
  for pid in "${cluster_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${cluster_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cluster_pids=()
}
bench_json() {  # shardctl bench options... -> one JSON object
  "$shardctl" bench --url "http://$aggregator" --json "$@"
}

mkdir -p "$results_dir"
tsv=$results_dir/cluster.tsv
printf 'measure\tvalue\tunit\n' >"$tsv"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tsv"; echo "$1: $2 $3"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. a shard of 1,000,000 counters ---------------------------------------------------------
start_cluster 1 2 --in-memory
"$loader" "${aggregator%:*}" "${aggregator##*:}" "$counters" 8 >/dev/null
before=$(curl -s "http://$aggregator/counters?prefix=c:0000001" | head -c 200)
to=$("$shardctl" cluster status --etcd "$etcd" --json | python3 -c '
import json, sys; s = json.load(sys.stdin); print("n2" if s["shardPlacements"][0]["owner"] == "n1" else "n1")')
moved=$("$shardctl" cluster move 0 --to "$to" --etcd "$etcd" --json)
record "move of a shard holding $counters counters: copy" \
  "$(echo "$moved" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["copySeconds"], 3))')" s
record "move of a shard holding $counters counters: writes paused" \
  "$(echo "$moved" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["pauseSeconds"]*1000, 1))')" ms
after=$(curl -s "http://$aggregator/counters?prefix=c:0000001" | head -c 200)
[ "$before" = "$after" ] || { echo "the counters differ after the move" >&2; exit 1; }

# --- 2. pauses of moves under load -------------------------------------------------------------
start_cluster 4 2 --in-memory
bench_json -c 16 -d $((moves / 2 + 5)) >"$work/under-moves.json" &
bench_pid=$!
pauses=()
for ((i = 0; i < moves; i++)); do
  owner=$("$shardctl" cluster status --etcd "$etcd" --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["shardPlacements"][1]["owner"])')
  to=n1; [ "$owner" = n1 ] && to=n2
  pauses+=("$("$shardctl" cluster move 1 --to "$to" --etcd "$etcd" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pauseSeconds"]*1000)')")
done
wait $bench_pid
record "write pause of $moves moves under load: p50" "$(printf '%s\n' "${pauses[@]}" | percentile 50)" ms
record "write pause of $moves moves under load: p99" "$(printf '%s\n' "${pauses[@]}" | percentile 99)" ms
record "write pause of $moves moves under load: max" "$(printf '%s\n' "${pauses[@]}" | percentile 100)" ms
python3 - "$work/under-moves.json" <<'EOF' | while IFS=$'\t' read -r m v u; do record "$m" "$v" "$u"; done
import json, sys
b = json.load(open(sys.argv[1]))
print(f"bench during the moves: errors\t{b['errors']}\tof {b['requests']}")
print(f"bench during the moves: latency max\t{b['latencyMs']['max']}\tms")
EOF

# --- 3. increments/s: 1 node, 3 nodes, Redis ----------------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.05; done
declare -A rates
for ((r = 0; r < rounds; r++)); do
  for nodes in 1 3; do
    start_cluster 16 $nodes
    wrk -t2 -c16 -d"$seconds" -s bench/increment_spread.lua "http://$aggregator" >"$work/wrk.out"
    ! grep -E "Non-2xx|Socket errors" "$work/wrk.out" || { echo "errors under load" >&2; exit 1; }
    rates[nodes$nodes]+="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out") "
  done
  stop_cluster
  rates[redis]+="$(redis-benchmark -p "$redis_port" -c 16 -n $((60000 * seconds)) -t incr --csv |
    awk -F'"' '/INCR/ {print $4}') "
done
one=$(echo "${rates[nodes1]}" | tr ' ' '\n' | grep . | median)
three=$(echo "${rates[nodes3]}" | tr ' ' '\n' | grep . | median)
redis=$(echo "${rates[redis]}" | tr ' ' '\n' | grep . | median)
record "increments/s, cluster aggregator + 1 node" "$one" "/s"
record "increments/s, cluster aggregator + 3 nodes" "$three" "/s"
record "increments/s, Redis INCR" "$redis" "/s"
record "3 nodes / 1 node" "$(awk -v a="$three" -v b="$one" 'BEGIN {printf "%.2f", a/b}')" x
record "cluster (3 nodes) / Redis INCR" "$(awk -v a="$three" -v b="$redis" 'BEGIN {printf "%.2f", a/b}')" x

# --- 4. GET /total latency against the number of nodes -----------------------------------------
: >"$work/total.dat"
for nodes in 1 4 16; do
  start_cluster 16 $nodes --in-memory
  bench_json -c 1 -d "$seconds" --op total >"$work/total-$nodes.json"
  read -r p50 p99 < <(python3 -c '
import json,sys; l = json.load(open(sys.argv[1]))["latencyMs"]; print(l["p50"], l["p99"])' \
    "$work/total-$nodes.json")
  record "GET /total with $nodes nodes: p50" "$p50" ms
  record "GET /total with $nodes nodes: p99" "$p99" ms
  echo "$nodes $p50 $p99" >>"$work/total.dat"
done
stop_cluster
gnuplot <<EOF
set terminal pngcairo size 800,500
set output "$results_dir/cluster-total.png"
set title "GET /total latency against nodes (16 shards, one connection)"
set xlabel "nodes"; set ylabel "latency (ms)"
set logscale x 2; set xtics (1, 4, 16); set key top left; set grid
plot "$work/total.dat" using 1:2 with linespoints title "p50", \
     "$work/total.dat" using 1:3 with linespoints title "p99"
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $tsv, $results_dir/cluster-total.png"
