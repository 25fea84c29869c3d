#!/usr/bin/env bash
# Starts the services the tests talk to over real connections when they are not running:
# PostgreSQL on 127.0.0.1:5432 (trust auth) and NATS with JetStream on 127.0.0.1:4222.
# Uses the machine's own packages (Debian's postgresql and nats-server); fails with a clear
# message when one cannot be reached after starting it.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    up "$port" && return 0
    sleep 0.1
  done
  echo "error: $name is not listening on 127.0.0.1:$port after starting it" >&2
  exit 1
}

if ! up 5432; then
  command -v pg_ctlcluster >/dev/null || {
    echo "error: PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is not installed (apt-get install postgresql)" >&2
    exit 1
  }
  echo "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_up 5432 PostgreSQL
fi

if ! up 4222; then
  command -v nats-server >/dev/null || {
    echo "error: NATS is not running on 127.0.0.1:4222 and nats-server is not installed (apt-get install nats-server)" >&2
    exit 1
  }
  echo "starting nats-server with JetStream"
  $SUDO mkdir -p /var/lib/nats-server
  $SUDO start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_up 4222 NATS
fi
echo "services up: PostgreSQL 127.0.0.1:5432, NATS 127.0.0.1:4222"
