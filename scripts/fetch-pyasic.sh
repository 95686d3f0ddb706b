#!/usr/bin/env bash
# Installs a real cgminer API client for the tests (tests/it/cgminer_api.rs): pyasic, a maintained
# Python library that farm tools use to read miners over cgminer's API (PyPI, pinned below), in
# its own virtual environment. Idempotent: later runs touch no network. Prints the absolute path
# of the environment's python as its last stdout line.
#
#   WGMINER_CACHE   cache root (default ~/.cache/wgminer); the environment goes under pyasic/.
set -euo pipefail

VERSION=0.79.0
cache="${WGMINER_CACHE:-$HOME/.cache/wgminer}/pyasic"
venv="$cache/pyasic-$VERSION"
python="$venv/bin/python"

source "$(dirname "$0")/lib.sh"

cache_lock "$cache"

if ! "$python" -c 'import pyasic' >/dev/null 2>&1; then
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "== installing python3-venv" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyasic==$VERSION" >&2
fi
echo "$python"
