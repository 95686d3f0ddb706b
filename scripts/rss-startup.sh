#!/usr/bin/env bash
# Memory and start-up figures for BENCHMARKS.md (issue 6 targets: RSS while mining on the CPU
# <= 64 MB, with a GPU <= 300 MB; start to first hash <= 1 s on the CPU).
#   scripts/rss-startup.sh [path/to/wgminer]      (default target/release/wgminer)
# Each run mines on a throwaway embedded node core for 20 s and reports /usr/bin/time -v's
# "Maximum resident set size"; start-up is the wall time from exec to the first block found at
# regtest difficulty (about every other hash is a block, so the first hash is the first block).
set -euo pipefail
bin=${1:-target/release/wgminer}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

rss() { # label, args...
  local label=$1; shift
  rm -rf "$tmp/d"
  /usr/bin/time -v timeout -s INT 20 "$bin" --datadir "$tmp/d" --json-log "$@" >/dev/null 2>"$tmp/time" || true
  local kb; kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$tmp/time")
  printf '%-40s max RSS %6.1f MB\n' "$label" "$(echo "$kb/1024" | bc -l)"
}

first_hash() { # args...
  rm -rf "$tmp/d"
  python3 - "$bin" "$tmp/d" "$@" <<'PY'
import json, subprocess, sys, time
bin, d, *args = sys.argv[1:]
t0 = time.monotonic()
p = subprocess.Popen([bin, "--datadir", d, "--json-log", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
for line in p.stdout:
    e = json.loads(line)
    if e.get("event") == "block_found":
        print(f"{' '.join(args):<40} first hash after {time.monotonic() - t0:.3f} s (exec to first block found)")
        break
p.send_signal(2); p.wait()
PY
}

rss "cpu, all threads, difficulty 1" --backend cpu --difficulty 1
rss "gpu (first adapter), difficulty 1" --backend gpu --difficulty 1
for i in 1 2 3; do first_hash --backend cpu; done
for i in 1 2 3; do first_hash --backend gpu; done
