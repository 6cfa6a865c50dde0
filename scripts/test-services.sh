#!/usr/bin/env bash
# Make sure the services the test suite needs are present on this machine.
#  - etcd (Debian's etcd-server) under the real Kubernetes CRD API server of ../shared/k8s.
# Installs with apt when missing and running as root (CI runs as root); otherwise explains.
set -euo pipefail

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)

if ((${#need_apt[@]})); then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-services: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "test-services: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or the Kubernetes tests will be skipped" >&2
  fi
fi

if [ -n "${BOBRAPET_TEST_APISERVER:-}" ] && [ ! -x "${BOBRAPET_TEST_APISERVER}" ]; then
  echo "test-services: BOBRAPET_TEST_APISERVER=${BOBRAPET_TEST_APISERVER} is not an executable; Kubernetes tests will be skipped" >&2
fi

# The brokers of the impulse tests (tests/impulses/), on loopback: started when their port is
# closed. The suite never skips these tests, so a broker that cannot be started is an error.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name seconds
  local i
  for ((i = 0; i < $3; i++)); do
    port_open "$1" && return 0
    sleep 1
  done
  echo "test-services: $2 did not accept connections on 127.0.0.1:$1 within $3 s" >&2
  return 1
}

start_broker() { # port name seconds command...
  local port=$1 name=$2 seconds=$3
  shift 3
  port_open "$port" && return 0
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "test-services: $name is not running on 127.0.0.1:$port and $1 is not installed" >&2
    return 1
  fi
  echo "test-services: starting $name"
  "$@" || { echo "test-services: could not start $name ($*)" >&2; return 1; }
  wait_port "$port" "$name" "$seconds"
}

mkdir -p /var/lib/redis /var/log/redis /var/lib/nats-server 2>/dev/null || true
start_broker 6379 Redis 30 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
start_broker 5672 RabbitMQ 180 rabbitmq-server -detached
start_broker 4222 NATS 30 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
