#!/usr/bin/env bash
# Start local PostgreSQL and RabbitMQ when they are installed but not running, then wait for them.
set -euo pipefail

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
AMQP_HOST=${AMQP_HOST:-127.0.0.1}
AMQP_PORT=${AMQP_PORT:-5672}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {  # host port name seconds
  for _ in $(seq 1 "$4"); do port_open "$1" "$2" && return 0; sleep 1; done
  echo "ensure-services: $3 did not come up on $1:$2" >&2
  return 1
}

if ! port_open "$PG_HOST" "$PG_PORT"; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "ensure-services: starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  else
    echo "ensure-services: PostgreSQL is not running on $PG_HOST:$PG_PORT and not installed here" >&2
    exit 1
  fi
  wait_port "$PG_HOST" "$PG_PORT" PostgreSQL 60
fi

if ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
  if command -v rabbitmq-server >/dev/null; then
    echo "ensure-services: starting RabbitMQ"
    rabbitmq-server -detached || true
    rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || true
  else
    echo "ensure-services: RabbitMQ is not running on $AMQP_HOST:$AMQP_PORT and not installed here" >&2
    exit 1
  fi
  wait_port "$AMQP_HOST" "$AMQP_PORT" RabbitMQ 120
fi
