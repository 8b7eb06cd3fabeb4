#!/usr/bin/env bash
# clusters.sh starts and stops, on loopback only, the local clusters the
# distributed tests run against (issue 12):
#
#   - a 3-node RabbitMQ cluster: nodes kairos-c1..c3@localhost, AMQP on
#     127.0.0.1:5681-5683, Erlang distribution on 25681-25683, its own epmd on
#     4381, one Erlang cookie, joined with `rabbitmqctl join_cluster`; quorum
#     queues work on it. With KAIROS_CLUSTERS_MANAGEMENT=1 the management
#     plugin listens on 15681-15683.
#   - a 6-node Redis Cluster on 127.0.0.1:7001-7006: 3 masters, 3 replicas,
#     cluster-node-timeout 2000, appendonly yes, AOF rewrites deferred to 1 GB
#     (they stall the engines that share the machine; README, Local clusters).
#
# Every node keeps its data, logs and PID file under KAIROS_CLUSTERS_DIR
# (default /tmp/kairos-clusters). The RabbitMQ on 5672/25672 (epmd 4369) and
# the Redis on 6379 that the other tests use are never touched.
#
#   scripts/clusters.sh up             # start both (a no-op when healthy)
#   scripts/clusters.sh down           # kill every node by its PID file, remove the data
#   scripts/clusters.sh status         # health of both; exit 1 if not healthy
#   scripts/clusters.sh env            # export KAIROS_CLUSTER_AMQP_URLS='...' KAIROS_CLUSTER_REDIS_URL='...'
#   scripts/clusters.sh pid rabbit|redis N     # PID of node N (1-3 / 1-6)
#   scripts/clusters.sh start rabbit|redis N   # (re)start node N with its data
#   scripts/clusters.sh wait [seconds]         # wait until both are healthy
#   scripts/clusters.sh ctl N args...          # rabbitmqctl against RabbitMQ node N
#
# `eval "$(scripts/clusters.sh env)"` exports the URLs into a shell.
#
# A node whose PID file is gone (KAIROS_CLUSTERS_DIR removed under it) but
# which still holds its port is recognised by its command line, stopped by
# `up`, `start` and `down`, and started afresh; anything else on a port is
# an error.
set -euo pipefail

DIR="${KAIROS_CLUSTERS_DIR:-/tmp/kairos-clusters}"
RMQ_BIN="${KAIROS_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"
EPMD_PORT=4381
RABBIT_NODES=(1 2 3)
REDIS_NODES=(1 2 3 4 5 6)

log() { printf 'clusters: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

amqp_port() { echo $((5680 + $1)); }
dist_port() { echo $((25680 + $1)); }
mgmt_port() { echo $((15680 + $1)); }
redis_port() { echo $((7000 + $1)); }
node_name() { echo "kairos-c$1@localhost"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive PIDFILE: the process of the PID file runs (a zombie, killed but not
# yet reaped by its parent, does not).
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null
}

# port_pid PORT: the PID listening on 127.0.0.1:PORT (empty when none, or
# when ss cannot tell).
port_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

# ours PID: the process is a node of these clusters, known by its command
# line (a RabbitMQ node started by this script names this cluster's epmd
# port, a Redis node its port in its title, epmd its port), whichever
# KAIROS_CLUSTERS_DIR started it.
ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  case "$cmd" in
  *beam*"-epmd_port $EPMD_PORT "*) return 0 ;;
  *"epmd -port $EPMD_PORT "*) return 0 ;;
  "redis-server 127.0.0.1:700"[1-6]" "*) return 0 ;;
  esac
  return 1
}

# claim_port PORT WHAT: make PORT free for node WHAT, whose PID file names no
# running process. A node of ours still listening there was orphaned (its
# KAIROS_CLUSTERS_DIR removed, its PID file with it): it is killed, since its
# data is gone and it cannot rejoin. Anything else on the port is an error.
claim_port() {
  local pid i
  port_open "$1" || return 0
  pid=$(port_pid "$1")
  if [ -z "$pid" ] || ! ours "$pid"; then
    die "port $1 is taken by another process${pid:+ (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))}"
  fi
  log "port $1: stopping an orphaned $2 (pid $pid) that no PID file under $DIR names"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do port_open "$1" || return 0; sleep 0.1; done
  die "port $1 still taken after stopping pid $pid"
}

# ---------------------------------------------------------------- RabbitMQ

# rmq_env N: the environment of node N (and of rabbitmqctl talking to it).
rmq_env() {
  local n=$1 base="$DIR/rabbitmq"
  export HOME="$base/home" # .erlang.cookie lives here
  export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_NODENAME RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  RABBITMQ_NODENAME=$(node_name "$n")
  export RABBITMQ_NODE_PORT RABBITMQ_DIST_PORT
  RABBITMQ_NODE_PORT=$(amqp_port "$n")
  RABBITMQ_DIST_PORT=$(dist_port "$n")
  export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$base/c$n/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$base/c$n/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$base/c$n/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$base/c$n/mnesia"
  export RABBITMQ_LOG_BASE="$base/c$n/log"
  export RABBITMQ_PID_FILE="$base/c$n/rabbitmq.pid"
  # Three nodes share the machine's cores with Redis and the engines: the
  # Erlang schedulers must not spin while idle (busy waiting), or they
  # take CPU the others need.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl() { # N args...: rabbitmqctl against node N
  local n=$1
  shift
  (rmq_env "$n" && "$RMQ_BIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@")
}

rmq_setup() {
  local base="$DIR/rabbitmq" n plugins
  mkdir -p "$base/home"
  if [ ! -s "$base/home/.erlang.cookie" ]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$base/home/.erlang.cookie"
  fi
  chmod 600 "$base/home/.erlang.cookie"
  : >"$base/rabbitmq-env.conf"
  plugins="rabbitmq_consistent_hash_exchange"
  [ "${KAIROS_CLUSTERS_MANAGEMENT:-}" = "1" ] && plugins="$plugins,rabbitmq_management"
  for n in "${RABBIT_NODES[@]}"; do
    mkdir -p "$base/c$n/mnesia" "$base/c$n/log"
    echo "[$plugins]." >"$base/c$n/enabled_plugins"
    {
      echo "listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")"
      echo "loopback_users = none"
      echo "cluster_partition_handling = pause_minority"
      # Quorum queue leaders spread over the nodes, whichever node declares
      # them (the default, client-local, puts all of them on the node the
      # first replica dials).
      echo "queue_leader_locator = balanced"
      if [ "${KAIROS_CLUSTERS_MANAGEMENT:-}" = "1" ]; then
        echo "management.tcp.ip = 127.0.0.1"
        echo "management.tcp.port = $(mgmt_port "$n")"
      fi
    } >"$base/c$n/rabbitmq.conf"
  done
}

# epmd_up starts this cluster's own epmd (port 4381), so the system's epmd
# on 4369 is left alone.
epmd_up() {
  local pidf="$DIR/rabbitmq/epmd.pid"
  alive "$pidf" && return 0
  claim_port $EPMD_PORT "epmd"
  nohup epmd -port $EPMD_PORT -address 127.0.0.1 >"$DIR/rabbitmq/epmd.log" 2>&1 &
  echo $! >"$pidf"
  for _ in $(seq 1 40); do port_open $EPMD_PORT && return 0; sleep 0.1; done
  die "epmd did not start on $EPMD_PORT"
}

rmq_start() { # N: start node N in the background (its data kept)
  local n=$1 base="$DIR/rabbitmq/c$1"
  alive "$base/rabbitmq.pid" && return 0
  claim_port "$(amqp_port "$n")" "RabbitMQ node $n"
  claim_port "$(dist_port "$n")" "RabbitMQ node $n"
  rm -f "$base/rabbitmq.pid"
  (rmq_env "$n" && exec nohup "$RMQ_BIN/rabbitmq-server" >"$base/log/stdout.log" 2>&1) &
  # The script execs erl, so $! is the node's PID; the node also writes it.
  echo $! >"$base/rabbitmq.pid"
}

rmq_wait_node() { # N seconds
  local n=$1 i
  for i in $(seq 1 "$2"); do
    alive "$DIR/rabbitmq/c$n/rabbitmq.pid" || die "RabbitMQ node $n died; see $DIR/rabbitmq/c$n/log"
    if ctl "$n" await_startup --timeout 1 >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "RabbitMQ node $n did not start in $2 s; see $DIR/rabbitmq/c$n/log"
}

# rmq_running_count N: how many nodes node N sees running in its cluster.
rmq_running_count() {
  ctl "$1" eval 'length(rabbit_nodes:all_running()).' 2>/dev/null | tr -d '[:space:]'
}

rmq_healthy() {
  local n c
  for n in "${RABBIT_NODES[@]}"; do
    alive "$DIR/rabbitmq/c$n/rabbitmq.pid" || return 1
  done
  c=$(rmq_running_count 1) || return 1
  [ "$c" = "3" ]
}

rmq_up() {
  local n fresh="" t0=$SECONDS
  [ -d "$DIR/rabbitmq/c1/mnesia" ] || fresh=1
  rmq_setup
  epmd_up
  for n in "${RABBIT_NODES[@]}"; do rmq_start "$n"; done
  for n in "${RABBIT_NODES[@]}"; do rmq_wait_node "$n" 120; done
  log "RabbitMQ nodes booted: $((SECONDS - t0)) s"
  for n in 2 3; do
    if ctl "$n" eval "lists:member('$(node_name 1)', rabbit_nodes:all())." 2>/dev/null |
      grep -q true; then
      continue
    fi
    [ -n "$fresh" ] || log "RabbitMQ node $n is not in the cluster: joining it"
    ctl "$n" stop_app
    ctl "$n" join_cluster "$(node_name 1)"
    ctl "$n" start_app
  done
}

# ------------------------------------------------------------------- Redis

redis_start() { # N: start node N (its nodes.conf and AOF kept)
  local n=$1 port d
  port=$(redis_port "$1")
  d="$DIR/redis/$port"
  mkdir -p "$d"
  alive "$d/redis.pid" && return 0
  claim_port "$port" "Redis node $n"
  rm -f "$d/redis.pid"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$d" \
    --daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 2000 --appendonly yes --save "" --auto-aof-rewrite-min-size 1gb >/dev/null
  for _ in $(seq 1 50); do
    [ -s "$d/redis.pid" ] && port_open "$port" && return 0
    sleep 0.1
  done
  die "Redis node $port did not start; see $d/redis.log"
}

rcli() { redis-cli -h 127.0.0.1 "$@"; }

redis_healthy() {
  local n port info
  for n in "${REDIS_NODES[@]}"; do
    port=$(redis_port "$n")
    alive "$DIR/redis/$port/redis.pid" || return 1
    info=$(rcli -p "$port" cluster info 2>/dev/null) || return 1
    grep -q 'cluster_state:ok' <<<"$info" || return 1
    grep -q 'cluster_slots_ok:16384' <<<"$info" || return 1
  done
  # Three masters, each with a replica.
  [ "$(rcli -p 7001 cluster nodes | grep -c master)" = "3" ] || return 1
  [ "$(rcli -p 7001 cluster nodes | grep -v fail | grep -c slave)" = "3" ]
}

redis_up() {
  local n addrs=()
  for n in "${REDIS_NODES[@]}"; do redis_start "$n"; done
  # A fresh set of nodes has no slots assigned: create the cluster.
  if [ "$(rcli -p 7001 cluster info | grep -o 'cluster_slots_assigned:[0-9]*' | cut -d: -f2)" = "0" ]; then
    for n in "${REDIS_NODES[@]}"; do addrs+=("127.0.0.1:$(redis_port "$n")"); done
    rcli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/redis/create.log" 2>&1 ||
      die "redis-cli --cluster create failed; see $DIR/redis/create.log"
  fi
}

# ------------------------------------------------------------------ common

wait_healthy() { # seconds
  local i
  for i in $(seq 1 $(($1 * 4))); do
    if rmq_healthy && redis_healthy; then return 0; fi
    sleep 0.25
  done
  rmq_healthy || log "RabbitMQ cluster not healthy: $(rmq_running_count 1 || echo '?') of 3 nodes running"
  redis_healthy || log "Redis Cluster not healthy"
  return 1
}

stop_pidfile() { # pidfile name
  local pid i
  [ -s "$1" ] || return 0
  pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $2 (pid $pid)"
  fi
  rm -f "$1"
}

cmd_up() {
  local t0=$SECONDS
  mkdir -p "$DIR/redis"
  if rmq_healthy && redis_healthy; then
    log "already up"
    return 0
  fi
  redis_up
  log "Redis nodes started, cluster created: $((SECONDS - t0)) s"
  rmq_up
  log "RabbitMQ nodes booted and joined: $((SECONDS - t0)) s"
  wait_healthy "${KAIROS_CLUSTERS_WAIT:-60}" || die "clusters did not become healthy"
  log "up in $((SECONDS - t0)) s (RabbitMQ 127.0.0.1:5681-5683, Redis Cluster 127.0.0.1:7001-7006)"
}

cmd_down() {
  local n
  for n in "${RABBIT_NODES[@]}"; do
    stop_pidfile "$DIR/rabbitmq/c$n/rabbitmq.pid" "RabbitMQ $(node_name "$n")"
  done
  stop_pidfile "$DIR/rabbitmq/epmd.pid" "epmd :$EPMD_PORT"
  for n in "${REDIS_NODES[@]}"; do
    stop_pidfile "$DIR/redis/$(redis_port "$n")/redis.pid" "Redis :$(redis_port "$n")"
  done
  # Nodes whose PID files went with their directory still hold the ports.
  # (A RabbitMQ node that paused itself in a minority has closed its AMQP
  # port but still holds its distribution port.)
  for n in "${RABBIT_NODES[@]}"; do
    claim_port "$(amqp_port "$n")" "RabbitMQ node $n"
    claim_port "$(dist_port "$n")" "RabbitMQ node $n"
  done
  claim_port $EPMD_PORT "epmd"
  for n in "${REDIS_NODES[@]}"; do claim_port "$(redis_port "$n")" "Redis node $n"; done
  case "$DIR" in /tmp/*|*kairos-clusters*) rm -rf "$DIR" ;; *) log "not removing $DIR" ;; esac
}

cmd_status() {
  local n port ok=0 pid
  echo "RabbitMQ:"
  for n in "${RABBIT_NODES[@]}"; do
    pid=$(cat "$DIR/rabbitmq/c$n/rabbitmq.pid" 2>/dev/null || true)
    if alive "$DIR/rabbitmq/c$n/rabbitmq.pid"; then
      echo "  $(node_name "$n") amqp://127.0.0.1:$(amqp_port "$n") pid $pid running"
    else
      echo "  $(node_name "$n") amqp://127.0.0.1:$(amqp_port "$n") down"
    fi
  done
  if rmq_healthy; then echo "  cluster: 3 nodes running"; else echo "  cluster: NOT healthy"; ok=1; fi
  echo "Redis Cluster:"
  for n in "${REDIS_NODES[@]}"; do
    port=$(redis_port "$n")
    pid=$(cat "$DIR/redis/$port/redis.pid" 2>/dev/null || true)
    if alive "$DIR/redis/$port/redis.pid"; then
      echo "  127.0.0.1:$port pid $pid $(rcli -p "$port" role 2>/dev/null | head -1)"
    else
      echo "  127.0.0.1:$port down"
    fi
  done
  if redis_healthy; then echo "  cluster_state:ok, 16384 slots, 3 masters + 3 replicas"; else echo "  cluster: NOT healthy"; ok=1; fi
  return $ok
}

cmd_env() {
  local n urls="" redis=""
  for n in "${RABBIT_NODES[@]}"; do
    urls="${urls:+$urls,}amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/"
  done
  redis="redis://127.0.0.1:$(redis_port 1)"
  for n in "${REDIS_NODES[@]:1}"; do
    redis="$redis$([ "$n" = 2 ] && echo '?' || echo '&')addr=127.0.0.1:$(redis_port "$n")"
  done
  echo "export KAIROS_CLUSTER_AMQP_URLS='$urls'"
  echo "export KAIROS_CLUSTER_REDIS_URL='$redis'"
}

node_pidfile() { # kind N
  case "$1" in
  rabbit | rabbitmq) echo "$DIR/rabbitmq/c$2/rabbitmq.pid" ;;
  redis) echo "$DIR/redis/$(redis_port "$2")/redis.pid" ;;
  *) die "unknown kind $1 (want rabbit or redis)" ;;
  esac
}

check_node() { # kind N
  case "$1" in
  rabbit | rabbitmq) [[ "$2" =~ ^[1-3]$ ]] || die "RabbitMQ node must be 1-3, got '$2'" ;;
  redis) [[ "$2" =~ ^[1-6]$ ]] || die "Redis node must be 1-6, got '$2'" ;;
  *) die "unknown kind '$1' (want rabbit or redis)" ;;
  esac
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
wait) wait_healthy "${2:-60}" ;;
pid)
  check_node "${2:-}" "${3:-}"
  f=$(node_pidfile "$2" "$3")
  alive "$f" || die "$2 node $3 is not running"
  cat "$f"
  ;;
start)
  check_node "${2:-}" "${3:-}"
  case "$2" in
  redis) redis_start "$3" ;;
  *) epmd_up && rmq_start "$3" && rmq_wait_node "$3" 120 ;;
  esac
  ;;
ctl)
  check_node rabbit "${2:-}"
  n=$2
  shift 2
  ctl "$n" "$@"
  ;;
*)
  echo "usage: $0 up|down|status|env|wait [s]|ctl N args|pid rabbit|redis N|start rabbit|redis N" >&2
  exit 2
  ;;
esac
