#!/usr/bin/env bash
# Run a local NATS server with JetStream for convergent replicas, in the
# foreground, on loopback only.
#
#   scripts/start-nats.sh                 # nats://127.0.0.1:4222, data in ./.nats
#   PORT=4333 DIR=/tmp/js scripts/start-nats.sh
#
# Needs nats-server (Debian/Ubuntu: apt-get install nats-server).
set -euo pipefail
PORT="${PORT:-4222}"
DIR="${DIR:-.nats}"
BIN="$(command -v nats-server || true)"
if [ -z "$BIN" ] && [ -x /usr/sbin/nats-server ]; then BIN=/usr/sbin/nats-server; fi
if [ -z "$BIN" ]; then
  echo "start-nats: nats-server not found; install it with: apt-get install nats-server" >&2
  exit 2
fi
mkdir -p "$DIR"
echo "start-nats: nats://127.0.0.1:$PORT (JetStream data in $DIR)" >&2
exec "$BIN" -js -a 127.0.0.1 -p "$PORT" -sd "$DIR"
