#!/usr/bin/env bash
# Run a throwaway local PostgreSQL for convergent's PostgreSQL store, in the
# foreground, on loopback only, with trust authentication (do not expose it).
#
#   scripts/start-postgres.sh             # postgresql://postgres@127.0.0.1:5432/postgres
#   PORT=5433 DIR=/tmp/pg scripts/start-postgres.sh
#
# Finds initdb/postgres on PATH or under /usr/lib/postgresql/*/bin. PostgreSQL
# refuses to run as root: as root the cluster is owned by and run as the
# 'postgres' user (through runuser).
set -euo pipefail
PORT="${PORT:-5432}"
DIR="$(realpath -m "${DIR:-.pg}")"
BINDIR=""
if command -v initdb >/dev/null 2>&1; then BINDIR="$(dirname "$(realpath "$(command -v initdb)")")"; fi
if [ -z "$BINDIR" ]; then
  BINDIR="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/postgres" ]; then
  echo "start-postgres: PostgreSQL binaries not found (Debian: apt-get install postgresql)" >&2
  exit 2
fi
AS=()
if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1 || ! command -v runuser >/dev/null 2>&1; then
    echo "start-postgres: running as root needs a 'postgres' user and runuser" >&2
    exit 2
  fi
  AS=(runuser -u postgres --)
  mkdir -p "$DIR"
  chown postgres "$DIR"
fi
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  "${AS[@]}" "$BINDIR/initdb" -D "$DIR/data" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
fi
echo "start-postgres: postgresql://postgres@127.0.0.1:$PORT/postgres (data in $DIR/data)" >&2
exec "${AS[@]}" "$BINDIR/postgres" -D "$DIR/data" -p "$PORT" -h 127.0.0.1 -k "$DIR"
