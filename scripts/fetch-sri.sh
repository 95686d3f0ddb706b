#!/usr/bin/env bash
# Installs SRI's Stratum V2 pool (pool_sv2 from crates.io, the reference implementation) for the
# Stratum V2 integration tests (tests/it/sv2_tp.rs): `cargo install --locked`, so it builds with the
# exact dependency versions it was released with. Idempotent: built once into the cache dir (about
# 5 minutes on an idle 2-core machine); later runs touch no network. Needs Cap'n Proto (pool_sv2
# talks to Bitcoin Core over IPC), installed with apt when missing. Prints the absolute path of the
# pool_sv2 binary as its last stdout line.
#
#   WGMINER_CACHE   cache root (default ~/.cache/wgminer); the pool goes under sri/.
set -euo pipefail

POOL_VERSION=0.7.0
cache="${WGMINER_CACHE:-$HOME/.cache/wgminer}/sri"
root="$cache/pool_sv2-$POOL_VERSION"
bin="$root/bin/pool_sv2"

source "$(dirname "$0")/lib.sh"

cache_lock "$cache"

if [ ! -x "$bin" ]; then
  if ! command -v capnp >/dev/null || ! dpkg -s libcapnp-dev >/dev/null 2>&1; then
    echo "== installing capnproto libcapnp-dev" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq capnproto libcapnp-dev >/dev/null
  fi
  echo "== building pool_sv2 $POOL_VERSION (cargo install --locked; a few minutes)" >&2
  # A target dir of its own, so the build never touches (or waits on) the project's.
  CARGO_TARGET_DIR="$cache/target" cargo install --locked --quiet --root "$root" \
    pool_sv2 --version "=$POOL_VERSION" >&2
  rm -rf "$cache/target"
fi

"$bin" --version >/dev/null 2>&1 || "$bin" --help >/dev/null 2>&1 || {
  echo "fetch-sri: $bin does not run" >&2
  exit 1
}
echo "$bin"
