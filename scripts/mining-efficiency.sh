#!/usr/bin/env bash
# Mining efficiency of a wgminer binary on the CPU: do the blocks (or pool shares) it finds match
# what its hash count predicts, how late are they, how bursty?
#
#   scripts/mining-efficiency.sh [OPTIONS] BIN [SECONDS] [EXTRA WGMINER FLAGS...]
#
# Solo (default): measures BIN's CPU rate with `BIN bench --backend cpu --json`, picks the
# difficulty D at which the CPU should find --per-second blocks a second (default 2:
# D = rate / (2 * 2^32)), mines for SECONDS (default 60) on a throwaway embedded node core
# (`BIN --datadir TMP --difficulty D --json-log --backend cpu EXTRA...`), stops it with SIGTERM
# and reads its exit line. The predicted block count is hashes * p with p = (T + 1) / 2^256,
# T the block target: the compact (nBits) form of floor(0xffff * 2^208 / D), which is what the
# node checks (its 24-bit mantissa makes T slightly smaller than the uncompacted target).
#
# --pool: starts scripts/bench-pool.py (a local Stratum V1 pool that behaves like public-pool:
# set_difficulty 16384, clean notify, set_difficulty D; a job every 10 s, every 3rd clean) on a
# free loopback port, with D chosen for --per-second shares a second (default 20), and runs
# `BIN -o stratum+tcp://127.0.0.1:PORT -u bench.worker -p x --suggest-diff D --backend cpu
# --json-log EXTRA...`. Predicted shares = hashes * p with p = (floor(0xffff*2^208/D) + 1)/2^256.
#
# Options (before BIN):
#   --pool               share mode (see above)
#   --per-second X       blocks (solo, default 2) or shares (pool, default 20) a second to aim at
#   --difficulty D       use this D instead of measuring the rate
#   --bench-seconds N    length of the rate measurement (default 5)
#   --job-interval S     pool: seconds between jobs (default 10)
#   --clean-every N      pool: every Nth job clean (default 3)
#   --keep DIR           copy the logs (miner log, pool share log, summaries) into DIR
#
# The -t/--threads and --cpu-path flags among EXTRA also go to the bench run. --backend cpu is
# added unless EXTRA names --backend, -d or --device. Nothing is built: BIN is used as given.
# Output: a human table, then one JSON line (the last line of stdout).
set -euo pipefail

me=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "$me: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

mode=solo per_second="" fixed_diff="" bench_s=5 job_interval=10 clean_every=3 keep=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --pool) mode=pool; shift ;;
    --per-second) per_second=${2:?}; shift 2 ;;
    --difficulty) fixed_diff=${2:?}; shift 2 ;;
    --bench-seconds) bench_s=${2:?}; shift 2 ;;
    --job-interval) job_interval=${2:?}; shift 2 ;;
    --clean-every) clean_every=${2:?}; shift 2 ;;
    --keep) keep=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) die "unknown option $1 (options go before BIN; see --help)" ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || usage
bin=$1; shift
secs=60
if [[ $# -ge 1 && $1 != -* ]]; then secs=$1; shift; fi
extra=("$@")

command -v python3 >/dev/null || die "needs python3"
[[ -f $bin && -x $bin ]] || die "BIN '$bin' is not an executable file"
[[ $secs =~ ^[0-9]+$ && $secs -ge 5 ]] || die "SECONDS must be a whole number >= 5 (got '$secs')"
[[ $bench_s =~ ^[0-9]+$ && $bench_s -ge 1 ]] || die "--bench-seconds must be a whole number >= 1"
[[ -z $per_second || $per_second =~ ^[0-9]*\.?[0-9]+$ ]] || die "--per-second must be a positive number"
[[ -z $fixed_diff || $fixed_diff =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || die "--difficulty must be a positive number"
[[ $job_interval =~ ^[0-9]*\.?[0-9]+$ ]] || die "--job-interval must be a positive number"
[[ $clean_every =~ ^[0-9]+$ ]] || die "--clean-every must be a whole number"
if [[ $mode == pool ]]; then
  [[ -f $here/bench-pool.py ]] || die "needs $here/bench-pool.py"
  per_second=${per_second:-20}
else
  per_second=${per_second:-2}
fi
[[ -n $keep ]] && { mkdir -p "$keep" || die "cannot create --keep dir $keep"; }

# Flags the bench run shares with the mining run; --backend cpu unless the caller picked devices.
bench_flags=() add_backend=1
for ((i = 0; i < ${#extra[@]}; i++)); do
  a=${extra[i]}
  case $a in
    -t|--threads|--cpu-path) bench_flags+=("$a" "${extra[i+1]:-}"); ((i++)) || true ;;
    --threads=*|--cpu-path=*|-t?*) bench_flags+=("$a") ;;
    --backend|--backend=*|-d|-d?*|--device|--device=*) add_backend=0 ;;
    -o|--url|--url=*|--datadir|--datadir=*|--difficulty|--difficulty=*|--json-log)
      die "EXTRA must not set $a (the script sets it)" ;;
  esac
done
backend_flags=(); ((add_backend)) && backend_flags=(--backend cpu)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mining-efficiency.XXXXXX")
runner_pid="" pool_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The runner forwards SIGTERM to the miner and waits for it (at most ~30 s, then SIGKILL).
  if [[ -n $runner_pid ]] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true; wait "$runner_pid" 2>/dev/null || true
  fi
  if [[ -n $pool_pid ]] && kill -0 "$pool_pid" 2>/dev/null; then
    kill -TERM "$pool_pid" 2>/dev/null || true; wait "$pool_pid" 2>/dev/null || true
  fi
  if [[ -n $keep && -d $tmp ]]; then
    cp -f "$tmp"/*.log "$tmp"/*.json "$tmp"/*.jsonl "$keep"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Python helpers: `run` (spawn, time, SIGTERM, wait4 for the CPU time) and `report`.
cat >"$tmp/eff.py" <<'PY'
import json, math, os, signal, sys, time
from decimal import Decimal
from fractions import Fraction

DIFF1 = 0xFFFF << 208

def cmd_run(argv):
    # run SECONDS STOP_TIMEOUT STDOUT STDERR RESULT -- cmd...
    secs, stop_timeout, out, err, res = float(argv[0]), float(argv[1]), argv[2], argv[3], argv[4]
    cmd = argv[6:]
    stop = {"asked": False}
    def on_sig(signum, frame):
        stop["asked"] = True
    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.monotonic()
        pid = os.posix_spawn(cmd[0], cmd, dict(os.environ),
                             file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                           (os.POSIX_SPAWN_DUP2, fo.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, fe.fileno(), 2)])
        status = None
        early = False
        while time.monotonic() - t0 < secs and not stop["asked"]:
            time.sleep(0.05)
            r = os.wait4(pid, os.WNOHANG)
            if r[0] == pid:
                status, ru = r[1], r[2]; early = True
                break
        t_term = time.monotonic()
        killed = False
        if status is None:
            os.kill(pid, signal.SIGTERM)  # one signal: a second one makes wgminer skip its drain
            while True:
                r = os.wait4(pid, os.WNOHANG)
                if r[0] == pid:
                    status, ru = r[1], r[2]; break
                if time.monotonic() - t_term > stop_timeout and not killed:
                    os.kill(pid, signal.SIGKILL); killed = True
                time.sleep(0.01)
        t_end = time.monotonic()
    rc = os.waitstatus_to_exitcode(status)
    with open(res, "w") as f:
        json.dump({"mined_s": t_term - t0, "stop_s": t_end - t_term, "wall_s": t_end - t0,
                   "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "max_rss_kb": ru.ru_maxrss,
                   "rc": rc, "killed": killed, "exited_early": early,
                   "interrupted": stop["asked"]}, f)

def pick_diff(argv):
    # pick_diff BENCH_JSON PER_SECOND -> D as a plain decimal with 4 significant digits
    rate = float(json.load(open(argv[0]))["total_hashes_per_second"])
    if not rate > 0:
        sys.exit("bench reported no hash rate")
    d = rate / (float(argv[1]) * 2**32)
    print(format(Decimal("%.4g" % d).normalize(), "f"), rate)

def compact(t):
    """Bitcoin's GetCompact then SetCompact: the target the nBits field really encodes."""
    n = (t.bit_length() + 7) // 8
    m = t >> (8 * (n - 3)) if n >= 3 else t << (8 * (3 - n))
    if m & 0x800000:
        m >>= 8; n += 1
    return m << (8 * (n - 3)) if n >= 3 else m >> (8 * (3 - n))

def pois_cdf(k, lam):
    if k < 0:
        return 0.0
    if lam == 0:
        return 1.0
    s, term = 0.0, math.exp(-lam)
    # sum in log space for big k
    logs = [i * math.log(lam) - lam - math.lgamma(i + 1) for i in range(k + 1)]
    mx = max(logs)
    return min(1.0, math.exp(mx) * sum(math.exp(l - mx) for l in logs))

def pois_ci(k, conf=0.95):
    """Exact (Garwood) interval for a Poisson mean given k events."""
    a = (1 - conf) / 2
    def solve(f, lo, hi):
        for _ in range(200):
            mid = (lo + hi) / 2
            if f(mid): hi = mid
            else: lo = mid
        return (lo + hi) / 2
    hi_b = k + 20 + 10 * math.sqrt(k + 1)
    lower = 0.0 if k == 0 else solve(lambda l: pois_cdf(k - 1, l) <= 1 - a, 0.0, hi_b)
    upper = solve(lambda l: pois_cdf(k, l) <= a, 0.0, hi_b)
    return lower, upper

def load_lines(path):
    ev = []
    for line in open(path, errors="replace"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            ev.append(json.loads(line))
        except ValueError:
            pass
    return ev

def pct(vals, q):
    if not vals: return None
    v = sorted(vals)
    return v[max(0, min(len(v) - 1, math.ceil(q / 100 * len(v)) - 1))]

def fmt(x, nd=3):
    if x is None: return "-"
    if isinstance(x, float): return f"{x:.{nd}f}"
    return str(x)

def report(argv):
    (mode, bin_, secs, dstr, rate, per_second, log, run_json, pool_json,
     load_before, load_after, cmdline) = argv[:12]
    D = Fraction(Decimal(dstr))
    ev = load_lines(log)
    run = json.load(open(run_json))
    exits = [e for e in ev if e.get("event") == "exit"]
    problems = []
    if not exits:
        problems.append("no exit line in the miner's log")
        status = {}
    else:
        status = exits[-1].get("status", {})
    if run["killed"]: problems.append("miner ignored SIGTERM and was killed")
    if run["exited_early"]: problems.append("miner exited before SECONDS (rc %s)" % run["rc"])
    if run["rc"] != 0: problems.append("miner exit status %s" % run["rc"])
    devs = status.get("devices") or []
    hashes = sum(int(d.get("hashes") or 0) for d in devs)
    t_exact = DIFF1 * D.denominator // D.numerator
    if mode == "solo":
        target = compact(t_exact)
        # Cross-check with the difficulty the miner reports for the template.
        tmpl = [e for e in ev if e.get("event") == "template" and "difficulty" in e]
        if tmpl:
            rep = tmpl[0]["difficulty"]
            mine = float(Fraction(DIFF1, target))
            if abs(rep - mine) > 1e-9 * mine:
                problems.append(f"template difficulty {rep} != nBits difficulty {mine}")
    else:
        target = t_exact
    p = Fraction(target + 1, 2**256)
    predicted = float(hashes * p)
    found_key = "blocks" if mode == "solo" else "accepted"
    found = int(status.get(found_key) or 0)
    lo, hi = pois_ci(found)
    eff = found / predicted if predicted > 0 else None
    res = {
        "mode": mode, "bin": bin_, "seconds": int(secs), "difficulty": dstr,
        "bench_rate_hs": float(rate), "aim_per_s": float(per_second),
        "p_per_hash": float(p), "target_hex": "%064x" % target,
        "hashes": hashes, "mined_s": round(run["mined_s"], 3),
        "mining_rate_hs": hashes / run["mined_s"] if run["mined_s"] > 0 else None,
        "predicted": predicted, found_key: found,
        "efficiency": eff,
        "efficiency_ci95": [lo / predicted, hi / predicted] if predicted > 0 else None,
        "submitted": status.get("submitted"), "accepted": status.get("accepted"),
        "rejected": status.get("rejected"), "stale": status.get("stale"),
        "blocks": status.get("blocks"),
        "solutions": status.get("solutions",
                                sum(int(d.get("solutions") or 0) for d in devs) if devs else None),
        "held": status.get("held"), "pending": status.get("pending"),
        "unanswered": status.get("unanswered"), "stale_reasons": status.get("stale_reasons"),
        "reject_reasons": status.get("reject_reasons"),
        "latency": status.get("latency"),
        "wall_s": round(run["wall_s"], 3), "stop_s": round(run["stop_s"], 3),
        "cpu_user_s": round(run["user_s"], 3), "cpu_sys_s": round(run["sys_s"], 3),
        "cpu_util": round((run["user_s"] + run["sys_s"]) / run["wall_s"], 3) if run["wall_s"] else None,
        "max_rss_kb": run["max_rss_kb"],
        "loadavg_before": load_before, "loadavg_after": load_after,
        "nproc": os.cpu_count(), "command": cmdline,
    }
    # Event-derived latencies (present in the old pipeline's log too).
    up = lambda e: e.get("uptime_s")
    if mode == "solo":
        found_ev = {e["hash"]: up(e) for e in ev if e.get("event") == "block_found" and "hash" in e}
        lat = [ (up(e) - found_ev[e["hash"]]) * 1e3 for e in ev
                if e.get("event") == "block_result" and e.get("hash") in found_ev
                and up(e) is not None and found_ev[e["hash"]] is not None]
        res["find_to_result_ms"] = ({"samples": len(lat), "median_ms": pct(lat, 50),
                                     "p99_ms": pct(lat, 99), "max_ms": max(lat)} if lat else None)
        tpl = [up(e) for e in ev if e.get("event") == "template"]
        sw = [e.get("latency_ms") for e in ev if e.get("event") == "job_switch" and e.get("latency_ms") is not None]
        res["job_switch_ms"] = ({"samples": len(sw), "median_ms": pct(sw, 50), "max_ms": max(sw)} if sw else None)
    else:
        sub = [up(e) for e in ev if e.get("event") == "submitted" and up(e) is not None]
        gaps = sorted(b - a for a, b in zip(sub, sub[1:]))
        res["miner_submit_gaps"] = ({"n": len(gaps), "frac_within_5ms": sum(g < 0.005 for g in gaps) / len(gaps),
                                     "median_ms": pct(gaps, 50) * 1e3, "p99_ms": pct(gaps, 99) * 1e3}
                                    if gaps else None)
    pool = None
    if pool_json and os.path.exists(pool_json) and os.path.getsize(pool_json):
        pool = json.load(open(pool_json))
        ps = pool.get("shares", {})
        ia = pool.get("inter_arrival", {})
        res["pool"] = {
            "accepted": ps.get("accepted"), "received": ps.get("received"),
            "stale": ps.get("stale"), "unknown_job": ps.get("unknown_job"),
            "low_difficulty": ps.get("low_difficulty"), "duplicate": ps.get("duplicate"),
            "invalid": ps.get("invalid"),
            "accepted_meeting_current_diff": pool.get("accepted_meeting_current_diff"),
            "accepted_meeting_job_diff": pool.get("accepted_meeting_job_diff"),
            "first_share_delay_s": pool.get("first_share_delay_s"),
            "first_share_job_index": pool.get("first_share_job_index"),
            "share_rate_per_s": pool.get("share_rate_per_s"),
            "inter_arrival": ia,
            "shares_per_job": [(j["index"], j["clean"], j["diff_at_send"], j["shares"], j["accepted"])
                               for j in pool.get("jobs", [])],
        }
        acc = ps.get("accepted") or 0
        res["pool_accepted"] = acc
        res["pool_ratio"] = acc / predicted if predicted > 0 else None
        plo, phi = pois_ci(acc)
        res["pool_ratio_ci95"] = [plo / predicted, phi / predicted] if predicted > 0 else None
        jobs = pool.get("jobs", [])
        if len(jobs) > 1 and predicted > 0 and run["mined_s"] > 0:
            # The hashes before the second job, if the miner kept the first job's 16384: what
            # the ratio would be with the hash count scaled to the time from the second job on.
            frac = max(0.0, run["mined_s"] - jobs[1]["sent_s"]) / run["mined_s"]
            res["pool_ratio_from_second_job"] = acc / (predicted * frac) if frac > 0 else None
            res["second_job_at_s"] = jobs[1]["sent_s"]
        rec = ps.get("received") or 0
        res["pool_stale_rate"] = ((ps.get("stale") or 0) + (ps.get("unknown_job") or 0)) / rec if rec else None
        if pool.get("connections", 0) == 0:
            problems.append("the miner never connected to the pool")
        if acc != (status.get("accepted") or 0):
            problems.append(f"pool accepted {acc} but the miner counts {status.get('accepted')}")
    res["problems"] = problems

    # ---- the human table ----
    rows = []
    add = lambda k, v: rows.append((k, v))
    add("mode", mode + ("  (embedded node core, block difficulty)" if mode == "solo" else "  (bench-pool.py, share difficulty)"))
    add("binary", bin_)
    add("command", cmdline)
    add("bench rate", f"{float(rate)/1e6:.2f} MH/s (aim {per_second}/s)")
    add("difficulty D", f"{dstr}  (p = {float(p):.6e} per hash)")
    add("mined / stop / wall", f"{run['mined_s']:.2f} s / {run['stop_s']:.2f} s / {run['wall_s']:.2f} s")
    add("hashes (exit line)", f"{hashes}  ({hashes / run['mined_s'] / 1e6:.2f} MH/s over the mined time)")
    add("predicted " + ("blocks" if mode == "solo" else "shares"), f"{predicted:.2f}")
    if mode == "solo":
        add("blocks accepted", f"{found}  (submitted {status.get('submitted')}, rejected {status.get('rejected')}, stale {status.get('stale')}, solutions {res['solutions']})")
        add("efficiency", f"{fmt(eff)}  95% CI [{fmt(lo / predicted if predicted else None)}, {fmt(hi / predicted if predicted else None)}]")
    else:
        add("miner: accepted", f"{found}  (submitted {status.get('submitted')}, rejected {status.get('rejected')}, stale {status.get('stale')}, solutions {res['solutions']})")
        add("miner efficiency", f"{fmt(eff)}  95% CI [{fmt(lo / predicted if predicted else None)}, {fmt(hi / predicted if predicted else None)}]")
    if status.get("held") is not None or status.get("pending") is not None:
        add("held / pending / unanswered", f"{status.get('held')} / {status.get('pending')} / {status.get('unanswered')}")
    if status.get("stale_reasons"):
        add("stale reasons", json.dumps(status.get("stale_reasons")))
    L = status.get("latency")
    if L:
        add("find->submit latency", f"median {fmt(L.get('median_ms'))} ms, p99 {fmt(L.get('p99_ms'))} ms, max {fmt(L.get('max_ms'))} ms ({L.get('samples')} samples)")
    else:
        add("find->submit latency", "- (the exit status has no latency)")
    if res.get("find_to_result_ms"):
        F = res["find_to_result_ms"]
        add("found event->result", f"median {fmt(F['median_ms'])} ms, p99 {fmt(F['p99_ms'])} ms, max {fmt(F['max_ms'])} ms ({F['samples']})")
    if res.get("job_switch_ms"):
        F = res["job_switch_ms"]
        add("job switch (events)", f"median {fmt(F['median_ms'])} ms, max {fmt(F['max_ms'])} ms")
    if pool:
        P = res["pool"]; ia = P["inter_arrival"]
        add("pool: accepted", f"{P['accepted']} of {P['received']} received; ratio to predicted {fmt(res['pool_ratio'])} 95% CI [{fmt(res['pool_ratio_ci95'][0]) if res['pool_ratio_ci95'] else '-'}, {fmt(res['pool_ratio_ci95'][1]) if res['pool_ratio_ci95'] else '-'}]")
        if res.get("pool_ratio_from_second_job") is not None:
            add("pool: ratio from job #1", f"{fmt(res['pool_ratio_from_second_job'])}  (hash count scaled to the time after the second job, sent at {res['second_job_at_s']:.2f} s)")
        add("pool: rejected", f"stale {P['stale']}, unknown job {P['unknown_job']}, low diff {P['low_difficulty']}, duplicate {P['duplicate']}, invalid {P['invalid']}  (stale rate {fmt(res['pool_stale_rate'])})")
        add("pool: meets diff", f"current at receive {P['accepted_meeting_current_diff']}, job's at send {P['accepted_meeting_job_diff']}")
        add("pool: first share", f"{fmt(P['first_share_delay_s'])} s after authorize (job #{P['first_share_job_index']})")
        add("pool: share rate", f"{fmt(P['share_rate_per_s'])} /s")
        if ia.get("n_gaps"):
            add("pool: inter-arrival", f"median {fmt(ia['median_ms'])} ms (Poisson {fmt(ia['poisson_median_ms'])}), p99 {fmt(ia['p99_ms'])} ms (Poisson {fmt(ia['poisson_p99_ms'])}), max {fmt(ia['max_ms'])} ms")
            add("pool: burstiness", f"{100*ia['frac_within_5ms']:.1f}% within 5 ms of the previous (Poisson {100*ia['poisson_frac_within_5ms']:.1f}%); var/mean per 100 ms {fmt(ia['dispersion_100ms'],2)}, per 1 s {fmt(ia['dispersion_1s'],2)} (Poisson 1)")
        add("pool: shares per job", " ".join(f"#{i}{'c' if c else ''}@{d:g}:{a}/{s}" for i, c, d, s, a in P["shares_per_job"]) + "  (#idx[c=clean]@diff:accepted/received)")
    add("cpu time", f"user {run['user_s']:.2f} s + sys {run['sys_s']:.2f} s = {res['cpu_util']} CPUs over the wall time (nproc {os.cpu_count()})")
    add("max RSS", f"{run['max_rss_kb'] / 1024:.1f} MB")
    add("loadavg before", load_before)
    add("loadavg after", load_after)
    for pr in problems:
        add("PROBLEM", pr)
    w = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    print()
    print(json.dumps(res))

if __name__ == "__main__":
    {"run": cmd_run, "pick_diff": pick_diff, "report": report}[sys.argv[1]](sys.argv[2:])
PY
eff() { python3 "$tmp/eff.py" "$@"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------------------------------------
echo "$me: $mode mode, $bin, ${secs}s" >&2
if [[ -n $fixed_diff ]]; then
  diff=$fixed_diff rate=0
else
  echo "$me: measuring the CPU rate (${bench_s}s): $bin bench --backend cpu -s $bench_s --json ${bench_flags[*]}" >&2
  "$bin" bench --backend cpu -s "$bench_s" --json "${bench_flags[@]}" >"$tmp/bench.json" 2>"$tmp/bench.log" \
    || { cat "$tmp/bench.log" >&2; die "bench failed"; }
  read -r diff rate < <(eff pick_diff "$tmp/bench.json" "$per_second") || die "could not read the bench rate"
  [[ -n $diff ]] || die "could not read the bench rate"
fi

pool_json=""
if [[ $mode == pool ]]; then
  python3 "$here/bench-pool.py" --port 0 --port-file "$tmp/port" --diff "$diff" \
    --job-interval "$job_interval" --clean-every "$clean_every" \
    --share-log "$tmp/pool-shares.jsonl" --out "$tmp/pool.json" >/dev/null 2>"$tmp/pool.log" &
  pool_pid=$!
  for _ in $(seq 100); do [[ -s $tmp/port ]] && break; kill -0 "$pool_pid" 2>/dev/null || break; sleep 0.05; done
  [[ -s $tmp/port ]] || { cat "$tmp/pool.log" >&2; die "bench-pool.py did not start"; }
  port=$(cat "$tmp/port")
  cmd=("$bin" -o "stratum+tcp://127.0.0.1:$port" -u bench.worker -p x --suggest-diff "$diff"
       "${backend_flags[@]}" --json-log "${extra[@]}")
  pool_json=$tmp/pool.json
else
  cmd=("$bin" --datadir "$tmp/datadir" --difficulty "$diff" "${backend_flags[@]}" --json-log "${extra[@]}")
fi

echo "$me: D=$diff; running for ${secs}s: ${cmd[*]}" >&2
load_before=$(loadavg)
python3 "$tmp/eff.py" run "$secs" 30 "$tmp/miner.log" "$tmp/miner-stderr.log" "$tmp/run.json" -- "${cmd[@]}" &
runner_pid=$!
wait "$runner_pid" || die "the runner failed"
runner_pid=""
load_after=$(loadavg)

if [[ -n $pool_pid ]]; then
  kill -TERM "$pool_pid" 2>/dev/null || true
  wait "$pool_pid" || true
  pool_pid=""
  [[ -s $tmp/pool.json ]] || { cat "$tmp/pool.log" >&2; die "bench-pool.py wrote no summary"; }
fi

if ! grep -q '"event":"exit"' "$tmp/miner.log"; then
  echo "$me: the miner wrote no exit line; its stderr ends with:" >&2
  tail -n 20 "$tmp/miner-stderr.log" >&2 || true
fi
eff report "$mode" "$bin" "$secs" "$diff" "$rate" "$per_second" "$tmp/miner.log" "$tmp/run.json" \
  "$pool_json" "$load_before" "$load_after" "${cmd[*]/$tmp/\$TMP}"
