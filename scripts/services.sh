#!/usr/bin/env bash
# services.sh makes sure the services the integration tests talk to are
# installed and running on this machine: RabbitMQ (127.0.0.1:5672, with the
# consistent-hash exchange plugin), Redis (127.0.0.1:6379) and, for the
# browser tests, Debian's Chromium and ChromeDriver; for the operations kit
# and the tracker's types, promtool (Debian's prometheus) and npm (which
# scripts/tools.sh uses to install TypeScript's compiler into a cache).
#
# It installs missing packages with apt-get (Debian/Ubuntu, as root or through
# sudo) and starts stopped services. Already running services are left alone.
# A RabbitMQ whose port is open but which does not answer the AMQP handshake
# is restarted. Set KAIROS_SKIP_INSTALL=1 to only start what is installed.
# "services.sh report" prints the services' state (disk, alarms, sockets).
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=""
apt_install() {
  if [ "${KAIROS_SKIP_INSTALL:-}" = "1" ]; then
    log "missing $*; KAIROS_SKIP_INSTALL=1, not installing"
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing $* and no apt-get here: install it by hand"
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_port() { # port seconds
  for _ in $(seq 1 "$(( $2 * 4 ))"); do
    port_open "$1" && return 0
    sleep 0.25
  done
  return 1
}

ensure_redis() {
  if port_open 6379; then return 0; fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  log "starting redis"
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_port 6379 20 || { log "redis did not start"; return 1; }
}

# amqp_answers reports whether the broker on 127.0.0.1:$1 answers an AMQP
# 0-9-1 protocol header with its connection.start frame within 10 s. A broker
# whose port is open may still not answer (out of sockets, a full disk, a
# wedged node): such a broker fails every test that talks to it.
amqp_answers() {
  timeout 10 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "AMQP\0\0\11\1" >&3
    head -c 1 <&3 | od -An -tx1 | grep -q 01' "$1" 2>/dev/null
}

# rabbitmq_report prints what tells why a broker misbehaves: free disk,
# alarms, and its file descriptor and socket use.
rabbitmq_report() {
  log "disk: $(df -h / 2>/dev/null | awk 'NR==2 {print $4 " free of " $2}')"
  command -v rabbitmq-diagnostics >/dev/null 2>&1 || return 0
  $SUDO timeout 30 rabbitmq-diagnostics -q alarms 2>&1 | head -3 | sed 's/^/services: rabbitmq alarms: /' >&2 || true
  $SUDO timeout 30 rabbitmq-diagnostics -q status 2>/dev/null |
    grep -A3 'File Descriptors' | sed 's/\x1b\[[0-9;]*m//g' | tr -s '\n' ' ' | sed 's/^/services: rabbitmq /' >&2 || true
  echo >&2
}

# restart_rabbitmq stops a broker that does not answer and starts it again.
restart_rabbitmq() {
  log "rabbitmq on 5672 does not answer the AMQP handshake: restarting it"
  rabbitmq_report
  if ! $SUDO timeout 30 rabbitmqctl stop >/dev/null 2>&1; then
    # Only the node that listens on 5672, not the local clusters' nodes.
    local pid
    pid=$(ss -Hltnp 'sport = :5672' 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
    if [ -n "$pid" ]; then $SUDO kill -9 "$pid" || true; fi
  fi
  for _ in $(seq 1 60); do port_open 5672 || break; sleep 0.5; done
  $SUDO rabbitmq-server -detached || true
  wait_port 5672 90 || { log "rabbitmq did not start"; return 1; }
}

ensure_rabbitmq() {
  if port_open 5672 && ! amqp_answers 5672; then restart_rabbitmq || return 1; fi
  if ! port_open 5672; then
    command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
    log "starting rabbitmq"
    # Debian's package may start it through its init script already.
    port_open 5672 || $SUDO rabbitmq-server -detached || true
    wait_port 5672 90 || { log "rabbitmq did not start"; return 1; }
  fi
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    $SUDO rabbitmq-plugins enable --quiet rabbitmq_consistent_hash_exchange >/dev/null 2>&1 ||
      log "could not enable rabbitmq_consistent_hash_exchange (multi-replica tests will fail)"
  fi
  for _ in $(seq 1 30); do amqp_answers 5672 && return 0; sleep 1; done
  log "rabbitmq on 5672 accepts connections but does not answer the AMQP handshake"
  rabbitmq_report
  return 1
}

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return 0; fi
  apt_install chromium chromium-driver || log "chromium not installed: browser tests will skip or fail"
}

# ensure_tools installs promtool (go test ./deploy checks the alert rules
# with it) and npm (the tracker's TypeScript check installs tsc with it).
# Debian ships promtool in the prometheus package, whose server is not
# wanted here: it is stopped if the package started it.
ensure_tools() {
  if ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus || log "promtool not installed: the alert rule tests will skip or fail"
    if command -v service >/dev/null 2>&1; then $SUDO service prometheus stop >/dev/null 2>&1 || true; fi
  fi
  if ! command -v npm >/dev/null 2>&1; then
    apt_install npm || log "npm not installed: the tracker's TypeScript test will skip or fail"
  fi
}

# "services.sh report" only prints the state of the machine's services (the
# test script does on failure, so a failed run shows a broker out of disk).
if [ "${1:-}" = "report" ]; then
  rabbitmq_report
  if amqp_answers 5672; then log "rabbitmq: answers on 5672"; else log "rabbitmq: NOT answering on 5672"; fi
  log "redis: $(timeout 5 redis-cli -p 6379 ping 2>&1 || echo 'no answer on 6379')"
  exit 0
fi

ensure_redis
ensure_rabbitmq
ensure_tools || true
if [ "${KAIROS_BROWSER_TESTS:-1}" != "0" ]; then ensure_chromium || true; fi
log "ready: rabbitmq 127.0.0.1:5672, redis 127.0.0.1:6379"
