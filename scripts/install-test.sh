#!/usr/bin/env bash
# The README's test command (and what .ci/run runs): create .venv, install
# convergent with its test extras, make the real servers the tests use
# available when this machine can (nats-server from Debian; PostgreSQL is
# found on PATH or under /usr/lib/postgresql; node for the JavaScript runtime),
# then run the whole test suite (arguments go to pytest: -m "not slow" for the
# fast tier).
# Tests that need a server that could not be installed skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nats-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q nats-server >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nats-server >/dev/null 2>&1; }) \
    || echo "install-test: nats-server could not be installed; NATS tests will skip" >&2
fi
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -q postgresql >/dev/null 2>&1 \
    || echo "install-test: postgresql could not be installed; PostgreSQL tests will skip" >&2
fi
if ! command -v node >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # the JavaScript runtime's tests and the docs' JS snippet run on node
  apt-get install -y -q nodejs >/dev/null 2>&1 \
    || echo "install-test: nodejs could not be installed; JavaScript tests will skip" >&2
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
  # Debian's system Python ships venv/ensurepip separately
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q python3-venv >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q python3-venv >/dev/null 2>&1; } || true
  fi
fi
# chromium + graphviz for the inspector's browser tests and svg/png diagrams
bash scripts/install-browser.sh || true
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
