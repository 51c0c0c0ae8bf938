#!/usr/bin/env bash
# Benchmark: shardctl side by side with its peers, in one run on one machine:
#   - shardctl serve (--role all, the default --fsync everysec),
#   - shardctl as separate processes (3 x --role shard + 1 x --role aggregator),
#   - the original Node.js system (seed-node's peer.js: express + axios),
#   - redis-server on loopback without persistence (--save "" --appendonly no).
# Loads: increments (wrk POST /increment, bench/increment.lua; redis-benchmark INCR),
# totals (wrk GET /total; redis-benchmark GET), one request from a fresh process
# (hyperfine: shardctl inc, curl, redis-cli), resident memory (VmRSS) idle and right
# after each load, and increments against connections (1, 16, 64, 256) and shard count
# (1, 3, 8). Every load runs ROUNDS times, interleaved, each on freshly started servers;
# the medians are printed with the ratios the project sets as targets, the raw results
# go to bench/results/compare.tsv and the charts to bench/results/compare-*.png.
# A benchmark, not a test: CI does not run it.
# Usage: bench/compare.sh [SECONDS_PER_LOAD] [ROUNDS]     (default 5 3: about 8 minutes)
# Environment: SEED_NODE=DIR (the original, default ../shared/peers/seed-node next to the
# clone; skipped with a note when absent),
# RESULTS_DIR=DIR (default bench/results), CONNECTIONS="1 16 64 256", SHARD_COUNTS="1 3 8".
set -euo pipefail
# A relative SEED_NODE means from where the script was started.
[ -z "${SEED_NODE:-}" ] || SEED_NODE=$(realpath -m -- "$SEED_NODE")
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${1:-5}
rounds=${2:-3}
results_dir=${RESULTS_DIR:-bench/results}
read -r -a connection_counts <<<"${CONNECTIONS:-1 16 64 256}"
read -r -a shard_counts <<<"${SHARD_COUNTS:-1 3 8}"
hyperfine_runs=30
hyperfine_warmup=5

# --- what it needs -----------------------------------------------------------------------
bash .ci/setup
need=()
for tool in wrk redis-server redis-benchmark redis-cli hyperfine gnuplot curl; do
  command -v $tool >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "Installing Debian packages for: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    wrk redis-server redis-tools hyperfine gnuplot-nox curl >&2
fi
cmake --workflow --preset release >/dev/null
shardctl=$repo/build/release/shardctl

# The original: copied to a writable cache under build/ (npm install needs to write).
# Only where SEED_NODE says, or next to the clone: never a path of one machine.
seed_src=${SEED_NODE:-../shared/peers/seed-node}
seed=""
if [ -f "$seed_src/peer.js" ] && command -v node >/dev/null &&
   command -v npm >/dev/null; then
  seed=$repo/build/seed-node
  mkdir -p "$seed"
  cp "$seed_src/peer.js" "$seed_src/package.json" "$seed/"
  chmod u+w "$seed"/*
  [ -d "$seed/node_modules/express" ] && [ -d "$seed/node_modules/axios" ] ||
    (cd "$seed" && npm install --no-audit --no-fund --silent >&2)
else
  echo "note: the original ($seed_src/peer.js, node, npm) was not found; it is left out" \
       "(set SEED_NODE=DIR)" >&2
fi

# --- servers -----------------------------------------------------------------------------
work=$(mktemp -d)
pids=()    # every background process, for the trap
group=()   # the processes of the system under test, for VmRSS
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_ports N: prints a base port B such that B..B+N-1 and B+100 are all free, below the
# ephemeral range (where outgoing connections could take them between the check and the bind).
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_ports() {
  local base i ok span=$((ephemeral_low - 10000 - 200))
  [ $span -gt 1000 ] || span=20000
  while true; do
    base=$((10000 + (RANDOM * 32768 + RANDOM) % span)); ok=1
    for ((i = 0; i < $1; i++)); do port_in_use $((base + i)) && { ok=0; break; }; done
    port_in_use $((base + 100)) && ok=0
    [ $ok = 1 ] && { echo $base; return; }
  done
}
wait_line() {  # file pattern pid
  local tries=0
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { echo "server exited:" >&2; cat "$1" >&2; exit 1; }
    ((++tries > 600)) && { echo "server not ready after 30 s:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
}

# Each start_* sets $address (host:port, or the port for Redis) and $group.
start_shardctl() {  # shards: shardctl serve --role all, default persistence
  local out="$work/serve-$RANDOM.out"
  "$shardctl" serve --port 0 --shard-base-port 0 --shards "$1" \
    --data-dir "$work/data-$RANDOM" >"$out" 2>&1 &
  pids+=($!); group=($!)
  wait_line "$out" "aggregator listening" $!
  address=$(awk '/aggregator listening/ {print $NF}' "$out")
}
start_separate() {  # shards: one process per shard and one aggregator
  local n=$1 data="$work/data-$RANDOM" k out urls=()
  group=()
  for ((k = 0; k < n; k++)); do
    out="$work/shard-$k-$RANDOM.out"
    "$shardctl" serve --role shard --shard-id $k --shards "$n" --port 0 --data-dir "$data" \
      >"$out" 2>&1 &
    pids+=($!); group+=($!)
    wait_line "$out" "listening" $!
    urls+=(--shard "http://$(awk '/listening/ {print $NF}' "$out")")
  done
  out="$work/aggregator-$RANDOM.out"
  "$shardctl" serve --role aggregator --port 0 "${urls[@]}" >"$out" 2>&1 &
  pids+=($!); group+=($!)
  wait_line "$out" "aggregator listening" $!
  address=$(awk '/aggregator listening/ {print $NF}' "$out")
}
start_original() {  # shards: node peer.js (shards and aggregator in one node process)
  local base attempt tries
  for attempt in 1 2 3 4 5; do  # a port taken between the check and the bind: other ports
    base=$(free_ports "$1")
    (cd "$seed" && SHARDS=$1 BASE_PORT=$base AGG_PORT=$((base + 100)) exec node peer.js) \
      >"$work/node.out" 2>&1 &
    pids+=($!); group=($!)
    address=127.0.0.1:$((base + 100)); tries=0
    until curl -sf "http://$address/total" >/dev/null; do
      kill -0 "${group[0]}" 2>/dev/null || break
      ((++tries > 300)) && { echo "node peer not ready after 30 s" >&2; exit 1; }
      sleep 0.1
    done
    kill -0 "${group[0]}" 2>/dev/null && return
    stop_group
  done
  cat "$work/node.out" >&2; exit 1
}
start_redis() {
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_ports 1)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
      --daemonize no >"$work/redis.out" 2>&1 &
    pids+=($!); group=($!)
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
      kill -0 "${group[0]}" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "${group[0]}" 2>/dev/null && break
    stop_group
  done
  [ ${#group[@]} -gt 0 ] || { cat "$work/redis.out" >&2; exit 1; }
  redis-cli -p "$port" set key:__rand_int__ 0 >/dev/null  # what redis-benchmark -t get reads
  address=$port
}
stop_group() {
  local pid
  for pid in "${group[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${group[@]}"; do wait "$pid" 2>/dev/null || true; done
  local rest=() p
  for p in "${pids[@]}"; do [[ " ${group[*]} " == *" $p "* ]] || rest+=("$p"); done
  pids=("${rest[@]}")
  group=()
}
rss_kib() {  # the sum of VmRSS over $group
  local pid total=0
  for pid in "${group[@]}"; do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status")))
  done
  echo $total
}

# --- loads -------------------------------------------------------------------------------
tsv=$work/compare.tsv
printf 'round\tsystem\tload\tconnections\tshards\tvalue\tunit\terrors\n' >"$tsv"
record() {  # round system load connections shards value unit errors
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$tsv"
  printf 'round %s: %-18s %-22s c=%-4s shards=%-2s %12s %s%s\n' "$1" "$2" "$3" "$4" "$5" \
    "$6" "$7" "$([ "${8:-0}" = 0 ] || [ "${8:-0}" = - ] || echo "  ($8 errors)")" >&2
}
wrk_run() {  # connections url [wrk options] -> $rate $errors
  local c=$1 url=$2 out threads=2; shift 2
  [ "$c" -lt 2 ] && threads=1
  out=$(wrk -t$threads -c"$c" -d"${seconds}s" "$@" "$url")
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  errors=$(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
                /Non-2xx/ {n += $NF} END {print n + 0}' <<<"$out")
}
declare -A redis_n  # requests per redis-benchmark run, sized to take about $seconds
redis_run() {  # connections test -> $rate
  local c=$1 test=$2 key="$1-$2" n
  n=${redis_n[$key]:-$((seconds * (c == 1 ? 8000 : 30000)))}
  rate=$(redis-benchmark -p "$address" -c "$c" -n "$n" -t "$test" --csv |
         awk -F'"' -v t="${test^^}" '$2 == t {print $4}')
  redis_n[$key]=$(awk -v r="$rate" -v s="$seconds" 'BEGIN {n = int(r * s); print n < 5000 ? 5000 : n}')
  errors=-
}

# One load: start the system fresh, note its idle memory, run the load, note its memory.
measure() {  # round system load connections shards
  local round=$1 system=$2 load=$3 c=$4 shards=$5
  case $system in
    shardctl) start_shardctl "$shards" ;;
    separate) start_separate "$shards" ;;
    original) start_original "$shards" ;;
    redis) start_redis ;;
  esac
  sleep 0.2
  local idle; idle=$(rss_kib)
  case $system/$load in
    redis/increment) redis_run "$c" incr ;;
    redis/total) redis_run "$c" get ;;
    */increment) wrk_run "$c" "http://$address/increment" -s bench/increment.lua ;;
    */total) wrk_run "$c" "http://$address/total" ;;
  esac
  local after; after=$(rss_kib)
  [ "$system" = redis ] && shards=-
  record "$round" "$system" "$load" "$c" "$shards" "$rate" "req/s" "$errors"
  record "$round" "$system" "rss_idle" "$c" "$shards" "$idle" KiB -
  record "$round" "$system" "rss_after_$load" "$c" "$shards" "$after" KiB -
  stop_group
}

# One request from a fresh process, against shardctl serve and redis-server.
oneshot() {  # round
  local round=$1 agg redis_group
  start_shardctl 3; agg=$address; local shardctl_group=("${group[@]}")
  start_redis; redis_group=("${group[@]}")
  local csv="$work/hyperfine-$round.csv"
  hyperfine -N --style none --runs $hyperfine_runs --warmup $hyperfine_warmup --export-csv "$csv" \
    -n "shardctl inc" "$shardctl inc 1 --url http://$agg" \
    -n "curl" "curl -s -X POST -H 'Content-Type: application/json' -d '{\"value\":1}' http://$agg/increment" \
    -n "redis-cli" "redis-cli -p $address INCR k" >/dev/null
  # command,mean,stddev,median,user,system,min,max (seconds)
  local name median
  while IFS=, read -r name median; do
    record "$round" "$name" oneshot - - "$(awk -v m="$median" 'BEGIN {printf "%.3f", m * 1000}')" ms -
  done < <(awk -F, 'NR > 1 {print $1 "," $4}' "$csv")
  group=("${redis_group[@]}"); stop_group
  group=("${shardctl_group[@]}"); stop_group
}

systems=(shardctl separate redis)
[ -n "$seed" ] && systems=(shardctl separate original redis)
echo "compare: ${seconds}s per load, $rounds rounds, systems: ${systems[*]}" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)  # others' load on the machine, for the record
for round in $(seq "$rounds"); do
  for c in "${connection_counts[@]}"; do
    for system in "${systems[@]}"; do measure "$round" "$system" increment "$c" 3; done
  done
  for system in "${systems[@]}"; do measure "$round" "$system" total 16 3; done
  for shards in "${shard_counts[@]}"; do
    [ "$shards" = 3 ] && [[ " ${connection_counts[*]} " == *" 16 "* ]] && continue  # measured above
    measure "$round" shardctl increment 16 "$shards"
  done
  oneshot "$round"
done

# --- medians, targets, charts ------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$results_dir"
date=$(date -u +%Y-%m-%d)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
machine="$(nproc) cores, ${cpu:-unknown CPU}, $(. /etc/os-release; echo "$PRETTY_NAME")"
{
  echo "# bench/compare.sh $seconds $rounds; $machine; $date; load average before $load_before, after $load_after"
  cat "$tsv"
} >"$results_dir/compare.tsv"
# medians.tsv: system load connections shards median unit
awk -F'\t' 'NR > 1 {k = $2 "\t" $3 "\t" $4 "\t" $5; v[k] = v[k] " " $6; u[k] = $7}
  END {for (k in v) {n = split(substr(v[k], 2), a, " ");
         for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) {t = a[i]; a[i] = a[j]; a[j] = t}
         print k "\t" (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) "\t" u[k]}}' \
  "$tsv" | sort >"$work/medians.tsv"
med() {  # system load connections shards -> median ("" when not measured)
  awk -F'\t' -v s="$1" -v l="$2" -v c="$3" -v n="$4" \
    '$1 == s && $2 == l && $3 == c && $4 == n {print $5}' "$work/medians.tsv"
}
# The median over every fresh start of a system (3 shards) of its idle memory.
idle_med() {
  awk -F'\t' -v s="$1" 'NR > 1 && $2 == s && $3 == "rss_idle" && ($5 == 3 || $5 == "-") {print $6}' "$tsv" |
    sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
fmt() {  # 12345.6 -> 12,346
  [ -n "$1" ] || { printf -- '-'; return; }
  awk -v x="$1" 'BEGIN {s = sprintf("%.0f", x); o = ""
    while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}
    printf "%s", s o}'
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo -; }
target() {  # label ratio op bound
  local verdict="not measured"
  [ "$2" != - ] && verdict=$(awk -v r="$2" -v b="$4" -v op="$3" \
    'BEGIN {print ((op == ">=" ? r >= b : r <= b) ? "met" : "NOT MET")}')
  printf '| %s | %sx | %s %sx | %s |\n' "$1" "$2" "$3" "$4" "$verdict"
}

si=$(med shardctl increment 16 3); pi=$(med separate increment 16 3)
oi=$(med original increment 16 3); ri=$(med redis increment 16 -)
st=$(med shardctl total 16 3); pt=$(med separate total 16 3)
ot=$(med original total 16 3); rt=$(med redis total 16 -)
ts=$(med "shardctl inc" oneshot - -); tc=$(med curl oneshot - -); tr=$(med redis-cli oneshot - -)
ms=$(idle_med shardctl); mp=$(idle_med separate); mo=$(idle_med original); mr=$(idle_med redis)
as=$(med shardctl rss_after_increment 16 3); ap=$(med separate rss_after_increment 16 3)
ao=$(med original rss_after_increment 16 3); ar=$(med redis rss_after_increment 16 -)
mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}' || printf -- '-'; }

summary=$results_dir/compare.md
{
  echo "\`bench/compare.sh $seconds $rounds\` on $machine, $date: medians of $rounds interleaved"
  echo "runs of ${seconds}s each, every run on freshly started servers; 16 connections"
  echo "(wrk -t2 -c16; redis-benchmark -c 16, no pipelining) unless noted. Load average of the"
  echo "machine (1, 5, 15 min) before the run: $load_before; after: $load_after."
  echo
  echo "| load | shardctl | separate processes | original (Node.js) | Redis |"
  echo "|---|---|---|---|---|"
  echo "| increments/s (POST /increment; INCR) | $(fmt "$si") | $(fmt "$pi") | $(fmt "$oi") | $(fmt "$ri") |"
  echo "| totals/s (GET /total; GET) | $(fmt "$st") | $(fmt "$pt") | $(fmt "$ot") | $(fmt "$rt") |"
  echo "| resident memory, idle | $(mib "$ms") | $(mib "$mp") | $(mib "$mo") | $(mib "$mr") |"
  echo "| resident memory, after the increments | $(mib "$as") | $(mib "$ap") | $(mib "$ao") | $(mib "$ar") |"
  echo
  echo "One request from a fresh process (hyperfine -N, $hyperfine_runs runs after $hyperfine_warmup warmup, per round):"
  echo "\`shardctl inc 1\` $(printf %.2f "${ts:-0}") ms, \`curl -X POST .../increment\` $(printf %.2f "${tc:-0}") ms," \
       "\`redis-cli INCR k\` $(printf %.2f "${tr:-0}") ms."
  echo
  echo "Increments/s against connections (3 shards; memory after the load):"
  echo
  echo "| connections | shardctl | separate processes | original | Redis | shardctl memory | Redis memory |"
  echo "|---|---|---|---|---|---|---|"
  for c in "${connection_counts[@]}"; do
    echo "| $c | $(fmt "$(med shardctl increment "$c" 3)") | $(fmt "$(med separate increment "$c" 3)")" \
         "| $(fmt "$(med original increment "$c" 3)") | $(fmt "$(med redis increment "$c" -)")" \
         "| $(mib "$(med shardctl rss_after_increment "$c" 3)") | $(mib "$(med redis rss_after_increment "$c" -)") |"
  done
  echo
  echo "shardctl increments/s against shard count (16 connections):" \
       "$(for n in "${shard_counts[@]}"; do printf '%s shards %s; ' "$n" "$(fmt "$(med shardctl increment 16 "$n")")"; done | sed 's/; $//')."
  errs=$(awk -F'\t' 'NR > 1 && $8 != "-" && $8 > 0 {printf "%s%s %s c=%s: %s", sep, $2, $3, $4, $8; sep = "; "}' "$tsv")
  [ -n "$errs" ] && echo && echo "wrk errors (socket errors, timeouts, non-2xx) in some runs: $errs."
  echo
  echo "| target | measured | goal | |"
  echo "|---|---|---|---|"
  target "increments: shardctl / Redis INCR" "$(ratio "$si" "$ri")" ">=" 0.5
  target "increments: shardctl / original" "$(ratio "$si" "$oi")" ">=" 30
  target "increments: separate processes / Redis INCR" "$(ratio "$pi" "$ri")" ">=" 0.3
  target "totals: shardctl / Redis GET" "$(ratio "$st" "$rt")" ">=" 0.5
  target "totals: shardctl / original" "$(ratio "$st" "$ot")" ">=" 30
  target "\`shardctl inc 1\` wall time / curl" "$(ratio "$ts" "$tc")" "<=" 0.75
  target "\`shardctl inc 1\` wall time / redis-cli" "$(ratio "$ts" "$tr")" "<=" 1.1
  target "serve memory idle / redis-server idle" "$(ratio "$ms" "$mr")" "<=" 2
  target "serve memory after the load / redis-server after the load" "$(ratio "$as" "$ar")" "<=" 4
} >"$summary"
echo >&2
cat "$summary"

# Charts: increments and memory against connections; the side-by-side bars.
title="$machine, $date"
for system in shardctl separate original redis; do
  for c in "${connection_counts[@]}"; do
    n=3; [ $system = redis ] && n=-
    r=$(med $system increment "$c" $n); m=$(med $system rss_after_increment "$c" $n)
    [ -n "$r" ] && printf '%s\t%s\t%s\n' "$c" "$r" "$m"
  done >"$work/conn-$system.tsv"
done
{
  printf 'load\tshardctl\tseparate processes\toriginal (Node.js)\tRedis\n'
  printf 'increments/s\t%s\t%s\t%s\t%s\n' "${si:-0}" "${pi:-0}" "${oi:-0}" "${ri:-0}"
  printf 'totals/s\t%s\t%s\t%s\t%s\n' "${st:-0}" "${pt:-0}" "${ot:-0}" "${rt:-0}"
} >"$work/bars.tsv"
conn_plot() {  # column expression
  local sep="" series
  for series in "shardctl:shardctl (--role all)" "separate:shardctl, separate processes" \
                "original:original (Node.js)" "redis:Redis"; do
    [ -s "$work/conn-${series%%:*}.tsv" ] || continue
    printf '%s"%s" using 1:(%s) with linespoints lw 2 pt 7 title "%s"' \
      "$sep" "$work/conn-${series%%:*}.tsv" "$1" "${series#*:}"
    sep=", "
  done
}
gnuplot <<EOF
set terminal pngcairo size 1200,560 font "sans,10"
set output "$results_dir/compare-connections.png"
set datafile separator "\t"
set multiplot layout 1,2 title "bench/compare.sh $seconds $rounds: $title" font "sans,11"
set logscale x 2
set xtics ($(IFS=,; echo "${connection_counts[*]}"))
set xrange [${connection_counts[0]} / 1.5:${connection_counts[-1]} * 1.5]
set xlabel "connections (wrk -c; redis-benchmark -c)"
set grid
set key below
set title "increments per second, 3 shards (median of $rounds)"
set logscale y 10
set ylabel "increments/s (log scale)"
plot $(conn_plot '$2')
set title "resident memory right after the load (median of $rounds)"
unset logscale y
set yrange [0:*]
set ylabel "VmRSS, MiB (all processes of the system)"
plot $(conn_plot '$3/1024')
unset multiplot
EOF
gnuplot <<EOF
set terminal pngcairo size 900,560 font "sans,10"
set output "$results_dir/compare-throughput.png"
set datafile separator "\t"
set title "16 connections, median of $rounds runs of ${seconds}s (bench/compare.sh $seconds $rounds)\n$title"
set style fill solid 0.85 border -1
set boxwidth 0.18
set grid ytics
set xrange [-0.5:1.5]
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set bmargin 4
set key autotitle columnheader
set xtics ("increments/s\n(POST /increment; INCR)" 0, "totals/s\n(GET /total; GET)" 1)
set ylabel "requests/s"
set key top left
set format y "%.0s%c"
plot for [i=2:5] "$work/bars.tsv" using (\$0 + (i - 3.5) * 0.2):i with boxes, \
     for [i=2:5] "$work/bars.tsv" using (\$0 + (i - 3.5) * 0.2):i:(sprintf("%.0f", column(i))) \
       with labels offset 0,0.7 font "sans,8" notitle
EOF
echo >&2
echo "raw results: $results_dir/compare.tsv; summary: $summary;" \
     "charts: $results_dir/compare-connections.png, $results_dir/compare-throughput.png" >&2
