#!/usr/bin/env bash
# What the inspector's end-to-end tests and `convergent diagram --format
# svg|png` need from the operating system: Debian's chromium (driven by the
# playwright Python package, which never downloads a browser here),
# chromium-driver, and graphviz's `dot`. Installs only what is missing, and
# only as root with apt-get; otherwise it says what is missing and exits 0,
# and the tests that need it skip with that reason.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
if [ "${#missing[@]}" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: missing ${missing[*]} (install them with apt-get as root);" \
       "browser and image tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } \
  || echo "install-browser: ${missing[*]} could not be installed; browser and image tests will skip" >&2
