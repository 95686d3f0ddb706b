#!/usr/bin/env bash
# Sweep the GPU kernel's launch shape on a real GPU: every workgroup size × nonces-per-thread
# pair for a few seconds each, then print the best. Run on the lent machine from the repo root
# (after the `.gl` loader is unpacked; see scripts/README). Writes $OUT/sweep.txt when OUT is set.
#   bash scripts/gpu-sweep.sh [seconds-per-point]
set -u
BIN=${WGMINER_BIN:-.device/bin/wgminer}
SECS=${1:-3}
LOG=${OUT:-/tmp}/sweep.txt
: >"$LOG"
best_rate=0
best=""
for wg in ${SWEEP_WG:-64 128 256 512}; do
  for npt in ${SWEEP_NPT:-1 2 4 8 16 32}; do
    json=$(timeout 60 "$BIN" bench --backend gpu --json -s "$SECS" \
      --gpu-workgroup-size "$wg" --gpu-nonces-per-thread "$npt" 2>>"$LOG.err")
    rate=$(printf '%s' "$json" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["total_hashes_per_second"]))' 2>/dev/null || echo 0)
    printf 'wg=%-4s npt=%-3s %10s H/s  %s\n' "$wg" "$npt" "$rate" "$json" | tee -a "$LOG"
    if [ "$rate" -gt "$best_rate" ]; then best_rate=$rate; best="--gpu-workgroup-size $wg --gpu-nonces-per-thread $npt"; fi
  done
done
echo "BEST $best_rate H/s with: $best" | tee -a "$LOG"
echo "$best" >/tmp/gpu-sweep-best
