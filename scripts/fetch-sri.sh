#!/usr/bin/env bash
# Installs one of SRI's Stratum V2 roles from crates.io (the reference implementation) for the
# Stratum V2 integration tests: `pool_sv2` 0.7.0 (tests/it/sv2_tp.rs, sv2_client.rs) or
# `translator_sv2` 0.6.0, the translator released with it (same stratum-apps 0.8.0 and
# mining_sv2 12.0.0; tests/it/sv2_translator.rs). `cargo install --locked`, so each builds with
# the exact dependency versions it was released with. Idempotent: built once into the cache dir
# (a few minutes each on an idle 2-core machine); later runs touch no network. The pool needs
# Cap'n Proto (it talks to Bitcoin Core over IPC), installed with apt when missing. Prints the
# absolute path of the binary as its last stdout line.
#
#   usage: fetch-sri.sh [pool_sv2|translator_sv2]   (default pool_sv2)
#   WGMINER_CACHE   cache root (default ~/.cache/wgminer); the roles go under sri/.
set -euo pipefail

role="${1:-pool_sv2}"
case "$role" in
  pool_sv2) version=0.7.0; features=() ;;
  # Without its ASIC telemetry feature (asic-rs): nothing here uses it, and it builds faster.
  translator_sv2) version=0.6.0; features=(--no-default-features) ;;
  *) echo "fetch-sri: unknown role '$role': use pool_sv2 or translator_sv2" >&2; exit 2 ;;
esac
cache="${WGMINER_CACHE:-$HOME/.cache/wgminer}/sri"
root="$cache/$role-$version"
bin="$root/bin/$role"

source "$(dirname "$0")/lib.sh"

cache_lock "$cache"

if [ ! -x "$bin" ]; then
  if [ "$role" = pool_sv2 ] && { ! command -v capnp >/dev/null || ! dpkg -s libcapnp-dev >/dev/null 2>&1; }; then
    echo "== installing capnproto libcapnp-dev" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq capnproto libcapnp-dev >/dev/null
  fi
  echo "== building $role $version (cargo install --locked; a few minutes)" >&2
  # A target dir of its own, so the build never touches (or waits on) the project's.
  CARGO_TARGET_DIR="$cache/target-$role" cargo install --locked --quiet --root "$root" \
    "${features[@]}" "$role" --version "=$version" >&2
  rm -rf "$cache/target-$role"
fi

"$bin" --version >/dev/null 2>&1 || "$bin" --help >/dev/null 2>&1 || {
  echo "fetch-sri: $bin does not run" >&2
  exit 1
}
echo "$bin"
