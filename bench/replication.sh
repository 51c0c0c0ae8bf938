#!/usr/bin/env bash
# Benchmark: what replication costs an increment, shardctl and Redis side by side in one run on
# one machine:
#   1. increments/s through a shardctl cluster aggregator: etcd on 127.0.0.1, 3 nodes on
#      127.0.0.11, .12 and .13 (each with its own data directory, --lease 2), 6 shards, one
#      aggregator; wrk -t2 with CONNECTIONS connections (32) and bench/increment_spread.lua
#      (values 1..60, so every shard gets writes), in four configurations:
#        r1-everysec  R=1, --fsync everysec      r2-everysec  R=2, --ack all, --fsync everysec
#        r1-always    R=1, --fsync always        r2-always    R=2, --ack all, --fsync always
#      (`cluster init --replicas R`; before measuring, every shard has an owner and, for R>1,
#      R-1 followers that are all in sync, by `cluster status --json`);
#   2. the Redis anchor: redis-server and one replica (--replicaof), both --appendonly yes with
#      the same --appendfsync (everysec, always) and --save "": INCR alone against INCR followed
#      by WAIT 1 0 after each INCR (acknowledged once the replica has it; the replica's
#      acknowledgement says it applied the write, not that it fsynced it: Redis 7.0 has no
#      WAITAOF), both sent by bench_redis_incr (bench/redis_incr.cc; redis-benchmark sends one
#      command per request, so it cannot send the WAIT) with CONNECTIONS connections, and
#      redis-benchmark INCR on the same pair as a check of that client (redis-benchmark makes
#      five epoll_ctl calls per request besides its send and recv, strace -c shows; on 2 shared
#      cores that CPU is Redis's, so it reports less than bench_redis_incr, which favours Redis).
# Every measurement runs on a freshly started cluster or Redis pair, ROUNDS times, interleaved.
# It prints the medians and the ratios R=2/R=1 per fsync policy (goal >= 0.5x) beside Redis's
# INCR+WAIT/INCR; the raw results (and the medians, round "median") go to
# bench/results/replication.tsv. A benchmark, not a test: CI does not run it.
# R=2 needs `cluster init --replicas` and `serve --ack`: a shardctl without them is refused
# before anything is measured (CONFIGS="r1-everysec r1-always" measures R=1 alone).
# Usage: bench/replication.sh [SECONDS_PER_LOAD] [ROUNDS]     (default 5 3: about 5 minutes)
# Environment: CONNECTIONS (32), CONFIGS ("r1-everysec r2-everysec r1-always r2-always"),
# JOBS (build jobs, default ninja's), RESULTS_DIR (bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${1:-5}
rounds=${2:-3}
connections=${CONNECTIONS:-32}
read -r -a configs <<<"${CONFIGS:-r1-everysec r2-everysec r1-always r2-always}"
results_dir=${RESULTS_DIR:-bench/results}
nodes=3
shards=6
ready_timeout=30  # seconds for a cluster to be ready (owners, followers in sync)

for config in "${configs[@]}"; do
  [[ $config =~ ^r[12]-(everysec|always)$ ]] ||
    { echo "replication.sh: CONFIGS: '$config' is not r1 or r2, -everysec or -always" >&2; exit 2; }
done

# --- what it needs -----------------------------------------------------------------------
bash .ci/setup
need=()
for tool in wrk redis-server redis-benchmark redis-cli curl python3; do
  command -v $tool >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "Installing Debian packages for: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    wrk redis-server redis-tools curl python3 >&2
fi
build_jobs=(); [ -z "${JOBS:-}" ] || build_jobs=(-j "$JOBS")
cmake --preset release >/dev/null
cmake --build --preset release --target shardctl "${build_jobs[@]}" >/dev/null
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDCTL_BUILD_TESTS=OFF \
  -DSHARDCTL_BUILD_BENCH=ON >/dev/null
cmake --build build/bench --target bench_redis_incr "${build_jobs[@]}" >/dev/null
shardctl=$repo/build/release/shardctl
redis_incr=$repo/build/bench/bench/bench_redis_incr

# R>1 needs options that are being built: refuse now, naming them, rather than after minutes.
# (The help is read into a variable: `shardctl ... --help | grep -q` could fail under pipefail
# when grep exits before shardctl has written all of it.)
init_help=$("$shardctl" cluster init --help)
serve_help=$("$shardctl" serve --help)
has_option() { [[ $1 =~ (^|[[:space:],])$2[[:space:]] ]]; }  # help option
has_replicas=0; has_option "$init_help" --replicas && has_replicas=1
if [[ " ${configs[*]} " == *" r2-"* ]]; then
  missing=""
  [ $has_replicas = 1 ] || missing+=" nor \`cluster init --replicas\`"
  has_option "$serve_help" --ack || missing+=" nor \`serve --ack\`"
  if [ -n "$missing" ]; then
    echo "replication.sh: $shardctl has no ${missing# nor }, so it cannot run R>1 (CONFIGS: ${configs[*]})." \
         "To measure R=1 alone: CONFIGS=\"r1-everysec r1-always\" bash bench/replication.sh" >&2
    exit 1
  fi
fi

# --- servers -----------------------------------------------------------------------------
work=$(mktemp -d)
pids=()  # every background process, for the trap
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
# Ctrl-C reaches wrk and the servers too (shardctl handles SIGINT): stop here rather than
# report the errors that follow as the benchmark's.
trap 'echo "replication.sh: interrupted" >&2; exit 130' INT
trap 'echo "replication.sh: terminated" >&2; exit 143' TERM
# stop_pids PID...: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_pids() {
  local pid deadline=$((SECONDS + 10))
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
forget_pids() {  # PID...: no longer the trap's to stop
  local rest=() p
  for p in "${pids[@]}"; do [[ " $* " == *" $p "* ]] || rest+=("$p"); done
  pids=("${rest[@]}")
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_ports N: prints a base port B such that B..B+N-1 and B+100 are all free, below the
# ephemeral range (where outgoing connections could take them between the check and the bind).
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_ports() {
  local base i ok attempt span=$((ephemeral_low - 10000 - 200))
  [ $span -gt 1000 ] || span=20000
  for ((attempt = 0; attempt < 100; attempt++)); do
    base=$((10000 + (RANDOM * 32768 + RANDOM) % span)); ok=1
    for ((i = 0; i < $1; i++)); do port_in_use $((base + i)) && { ok=0; break; }; done
    port_in_use $((base + 100)) && ok=0
    [ $ok = 1 ] && { echo $base; return; }
  done
  echo "no $1 free ports found below $ephemeral_low in 100 tries" >&2
  exit 1
}
wait_line() {  # file pattern pid
  local tries=0
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { echo "server exited:" >&2; cat "$1" >&2; exit 1; }
    ((++tries > 600)) && { echo "server not ready after 30 s:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
}
wait_for() {  # seconds pid log what command...: runs command until it succeeds
  local timeout=$1 pid=$2 log=$3 what=$4 deadline=$((SECONDS + $1))
  shift 4
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "$what: exited:" >&2; cat "$log" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "$what: not ready after $timeout s:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
}

# start_cluster R FSYNC: a fresh etcd, $nodes nodes, $shards shards, one aggregator, rebalanced
# and ready; sets $etcd and $aggregator.
cluster_pids=()
cluster_dirs=()
start_cluster() {
  local replicas=$1 fsync=$2 base n out init=() serve=()
  base=$(free_ports 2)
  mkdir -p "$work/etcd-$base"
  cluster_dirs=("$work/etcd-$base")
  etcd --data-dir "$work/etcd-$base" --listen-client-urls "http://127.0.0.1:$base" \
    --advertise-client-urls "http://127.0.0.1:$base" --listen-peer-urls "http://127.0.0.1:$((base + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((base + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((base + 1))" >"$work/etcd-$base.log" 2>&1 &
  pids+=($!); cluster_pids=($!)
  etcd="http://127.0.0.1:$base"
  wait_for 30 $! "$work/etcd-$base.log" "etcd at $etcd" curl -sf "$etcd/health"
  # R=1 is today's cluster: --replicas is passed whenever this shardctl knows it (so that its
  # default cannot change what R=1 means), and R>1 was refused above when it does not.
  [ $has_replicas = 1 ] && init=(--replicas "$replicas")
  [ "$replicas" -gt 1 ] && serve=(--ack all)
  "$shardctl" cluster init --etcd "$etcd" --shards $shards "${init[@]}" >/dev/null
  for ((n = 1; n <= nodes; n++)); do
    out="$work/node-$base-$n.out"
    cluster_dirs+=("$work/data-$base-$n")
    "$shardctl" serve --etcd "$etcd" --node-id "n$n" --bind "127.0.0.$((10 + n))" --port 0 \
      --data-dir "$work/data-$base-$n" --fsync "$fsync" --lease 2 "${serve[@]}" >"$out" 2>&1 &
    pids+=($!); cluster_pids+=($!)
    wait_line "$out" "node listening" $!
  done
  out="$work/aggregator-$base.out"
  "$shardctl" serve --role aggregator --etcd "$etcd" --port 0 >"$out" 2>&1 &
  pids+=($!); cluster_pids+=($!)
  wait_line "$out" "aggregator listening" $!
  aggregator=$(awk '/aggregator listening/ {print $NF}' "$out")
  "$shardctl" cluster rebalance --etcd "$etcd" >/dev/null
  wait_cluster_ready "$replicas"
}
# Every shard has an owner that answers, no move is under way and, when R>1, R-1 followers,
# every one of them in the shard's inSync list. At most $ready_timeout s, then the status.
cluster_ready() {  # replicas < cluster status --json
  python3 -c '
import json, sys
replicas = int(sys.argv[1])
status = json.load(sys.stdin)
placements = status["shardPlacements"]
def ready(p):
    if not p.get("owner") or p.get("movingTo") or "error" in p:
        return False
    if replicas == 1:
        return True
    followers, in_sync = p.get("followers") or [], p.get("inSync") or []
    return len(followers) == replicas - 1 and all(f in in_sync for f in followers)
sys.exit(0 if len(placements) == status["shards"] and all(map(ready, placements)) else 1)
' "$1"
}
wait_cluster_ready() {  # replicas
  local deadline=$((SECONDS + ready_timeout)) status
  while true; do
    status=$("$shardctl" cluster status --etcd "$etcd" --json 2>&1) || true  # exit 4: not yet
    cluster_ready "$1" <<<"$status" 2>/dev/null && return
    if ((SECONDS >= deadline)); then
      echo "the cluster (R=$1) is not ready after $ready_timeout s: a shard without an owner," \
           "or (R>1) without R-1 followers all in inSync. cluster status --json:" >&2
      echo "$status" >&2
      exit 1
    fi
    sleep 0.2
  done
}
stop_cluster() {
  stop_pids "${cluster_pids[@]}"
  forget_pids "${cluster_pids[@]}"
  rm -rf "${cluster_dirs[@]}"
  cluster_pids=(); cluster_dirs=()
}

# start_redis FSYNC: a primary and its replica, both --appendonly yes --appendfsync FSYNC,
# the replica in sync; sets $redis_port (the primary's).
redis_pids=()
redis_dirs=()
start_redis() {
  local fsync=$1 base role
  base=$(free_ports 2)
  redis_pids=(); redis_dirs=()
  for role in primary replica; do
    local port=$base dir="$work/redis-$base-$role" replicaof=()
    [ $role = replica ] && port=$((base + 1)) && replicaof=(--replicaof 127.0.0.1 "$base")
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly yes \
      --appendfsync "$fsync" --daemonize no "${replicaof[@]}" >"$dir.log" 2>&1 &
    pids+=($!); redis_pids+=($!); redis_dirs+=("$dir")
    wait_for 30 $! "$dir.log" "redis $role on port $port" redis-cli -p "$port" ping
  done
  redis_port=$base
  wait_for 30 "${redis_pids[1]}" "$work/redis-$base-replica.log" "the replica in sync" \
    replica_online "$redis_port"
}
replica_online() {  # primary port
  local info
  info=$(redis-cli -p "$1" info replication)
  [[ $info == *slave0:*state=online* ]]
}
stop_redis() {
  stop_pids "${redis_pids[@]}"
  forget_pids "${redis_pids[@]}"
  rm -rf "${redis_dirs[@]}"
  redis_pids=(); redis_dirs=()
}

# --- loads -------------------------------------------------------------------------------
tsv=$work/replication.tsv
printf 'config\tround\tincrements_per_s\n' >"$tsv"
record() {  # config round rate
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tsv"
  printf 'round %s: %-32s %10.0f increments/s\n' "$2" "$1" "$3" >&2
}
shardctl_run() {  # config round
  local config=$1 round=$2 replicas fsync name
  replicas=${config%%-*}; replicas=${replicas#r}; fsync=${config#*-}
  name=shardctl-r$replicas-$fsync; [ "$replicas" -gt 1 ] && name=shardctl-r$replicas-ackall-$fsync
  start_cluster "$replicas" "$fsync"
  wrk -t2 -c"$connections" -d"${seconds}s" -s bench/increment_spread.lua "http://$aggregator" \
    >"$work/wrk.out"
  if grep -qE "Non-2xx|Socket errors" "$work/wrk.out"; then
    echo "$name: errors under load:" >&2; cat "$work/wrk.out" >&2; exit 1
  fi
  record "$name" "$round" "$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")"
  stop_cluster
}
# redis_incr_run [--wait]: bench_redis_incr against $redis_port; sets $rate. The counter it
# increments must have grown by the increments it reports, give or take those still in flight
# when it stopped (at most one a connection): a check on the client, since the server counts.
redis_incr_run() {
  local before after out n
  before=$(redis-cli -p "$redis_port" get bench:k); before=${before:-0}
  out=$("$redis_incr" "$redis_port" "$connections" "$seconds" "$@")
  after=$(redis-cli -p "$redis_port" get bench:k)
  rate=$(awk '{print $2}' <<<"$out"); n=$(awk '{print substr($3, 2)}' <<<"$out")
  if ((after - before < n || after - before > n + connections)); then
    echo "bench_redis_incr $*: reported $n increments, Redis counted $((after - before)): $out" >&2
    exit 1
  fi
}
declare -A redis_n  # requests per redis-benchmark run, sized to take about $seconds
redis_run() {  # fsync round
  local fsync=$1 round=$2 incr rate n
  start_redis "$fsync"
  redis_incr_run; incr=$rate
  record "redis-incr-$fsync" "$round" "$incr"
  redis_incr_run --wait
  record "redis-incr-wait-$fsync" "$round" "$rate"
  # The first run of each policy takes as many requests as bench_redis_incr's INCR took.
  n=${redis_n[$fsync]:-$(awk -v r="$incr" -v s="$seconds" \
    'BEGIN {n = int(r * s); print n < 5000 ? 5000 : n}')}
  rate=$(redis-benchmark -p "$redis_port" -c "$connections" -n "$n" -t incr --csv |
         awk -F'"' '$2 == "INCR" {print $4}')
  [ -n "$rate" ] || { echo "redis-benchmark gave no INCR rate" >&2; exit 1; }
  record "redis-benchmark-incr-$fsync" "$round" "$rate"
  redis_n[$fsync]=$(awk -v r="$rate" -v s="$seconds" 'BEGIN {n = int(r * s); print n < 5000 ? 5000 : n}')
  stop_redis
}

fsyncs=()  # the fsync policies of the configurations, in order, each once
for config in "${configs[@]}"; do
  [[ " ${fsyncs[*]} " == *" ${config#*-} "* ]] || fsyncs+=("${config#*-}")
done
echo "replication: ${seconds}s per load, $rounds rounds, $connections connections," \
     "configurations: ${configs[*]}; Redis appendfsync ${fsyncs[*]}" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)  # others' load on the machine, for the record
for round in $(seq "$rounds"); do
  for config in "${configs[@]}"; do shardctl_run "$config" "$round"; done
  for fsync in "${fsyncs[@]}"; do redis_run "$fsync" "$round"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- medians and ratios ------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
med() {  # config -> its median ("" when not measured)
  local values
  values=$(awk -F'\t' -v c="$1" 'NR > 1 && $1 == c {print $3}' "$tsv")
  [ -z "$values" ] || median <<<"$values"
}
ratio() {  # a b -> a/b as 0.52x, or - when either was not measured
  [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}' || echo -
}
fmt() {  # 12345.6 -> 12,346
  [ -n "$1" ] || { printf -- '-'; return; }
  awk -v x="$1" 'BEGIN {s = sprintf("%.0f", x); o = ""
    while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}
    printf "%s", s o}'
}
goal() {  # ratio bound -> met / NOT MET / not measured
  [ "$1" = - ] && { echo "not measured"; return; }
  awk -v r="${1%x}" -v b="$2" 'BEGIN {print (r + 0 >= b ? "met" : "NOT MET")}'
}

date=$(date -u +%Y-%m-%d)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
# shellcheck source=/dev/null
machine="$(nproc) cores, ${cpu:-unknown CPU}, $(. /etc/os-release; echo "$PRETTY_NAME")"
mkdir -p "$results_dir"
{
  echo "# bench/replication.sh $seconds $rounds; CONNECTIONS=$connections; $machine; $date;" \
       "load average before $load_before, after $load_after"
  cat "$tsv"
  awk -F'\t' 'NR > 1 && !seen[$1]++ {print $1}' "$tsv" | while read -r config; do
    printf '%s\tmedian\t%s\n' "$config" "$(med "$config")"
  done
} >"$results_dir/replication.tsv"

echo
echo "Increments/s, medians of $rounds rounds of ${seconds}s, $connections connections; $machine;"
echo "$date; load average before $load_before, after $load_after."
echo "shardctl: etcd, $nodes nodes (127.0.0.11-$((10 + nodes))), $shards shards, one cluster aggregator,"
echo "wrk -t2 -c$connections bench/increment_spread.lua. Redis: a primary and one replica, appendonly yes,"
echo "bench_redis_incr -c $connections (INCR; INCR then WAIT 1 0), redis-benchmark -c $connections -t incr."
echo
echo "| fsync | shardctl R=1 | shardctl R=2 --ack all | R=2/R=1 | Redis INCR | Redis INCR+WAIT |" \
     "Redis WAIT/INCR | redis-benchmark INCR |"
echo "|---|---|---|---|---|---|---|---|"
for fsync in "${fsyncs[@]}"; do
  r1=$(med "shardctl-r1-$fsync"); r2=$(med "shardctl-r2-ackall-$fsync")
  ri=$(med "redis-incr-$fsync"); rw=$(med "redis-incr-wait-$fsync")
  rb=$(med "redis-benchmark-incr-$fsync")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$fsync" "$(fmt "$r1")" \
    "$(fmt "$r2")" "$(ratio "$r2" "$r1")" "$(fmt "$ri")" "$(fmt "$rw")" "$(ratio "$rw" "$ri")" \
    "$(fmt "$rb")"
done
echo
for fsync in "${fsyncs[@]}"; do
  r1=$(med "shardctl-r1-$fsync"); r2=$(med "shardctl-r2-ackall-$fsync")
  ri=$(med "redis-incr-$fsync"); rw=$(med "redis-incr-wait-$fsync")
  rb=$(med "redis-benchmark-incr-$fsync")
  echo "$fsync: R=2/R=1 $(ratio "$r2" "$r1") (goal >= 0.5x: $(goal "$(ratio "$r2" "$r1")" 0.5));" \
       "Redis INCR+WAIT/INCR $(ratio "$rw" "$ri");" \
       "shardctl R=1 / Redis INCR $(ratio "$r1" "$ri");" \
       "shardctl R=2 / Redis INCR+WAIT $(ratio "$r2" "$rw");" \
       "bench_redis_incr / redis-benchmark INCR $(ratio "$ri" "$rb")"
done
echo
echo "raw results and medians: $results_dir/replication.tsv"
