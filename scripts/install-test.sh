#!/usr/bin/env bash
# Install convergent with its test extras into .venv and run the whole test suite.
# This is the README's second command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e '.[test]'
.venv/bin/python -m pytest "$@"
