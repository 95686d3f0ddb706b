#!/usr/bin/env python3
"""wgminer's CPU paths side by side with cpuminer-opt and pooler's cpuminer (issue 15).

Runs `cpuminer -a sha256d --benchmark -t N`, `minerd -a sha256d --benchmark -t 1` and
`wgminer bench --backend cpu -t N --cpu-path P` one after another, round after round (so a busy
spell on a shared machine hits every miner alike), each pinned with `taskset`, and rates each
by the CPU time it used, not by wall time:

  wgminer: hashes (from `--json`) / the process's user+system time (from wait4);
  peers:   each rate they print after a warm-up, divided by the CPU share they got since the
           previous line (/proc/PID/task/*/schedstat); the median of those lines, all rounds.

Prints every run (with /proc/loadavg before and after), then per-CPU-second medians and the
ratios wgminer/peer. Never builds the peers: pass their binaries.

  scripts/cpu-peer-bench.py --cpuminer-sha /work/peers/cpuminer-opt-noavx512/cpuminer \\
      --cpuminer /work/peers/cpuminer-opt/cpuminer --minerd /work/peers/cpuminer/minerd \\
      --rounds 3 --seconds 12
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

RATE = re.compile(r"Total:\s*([\d.]+)\s*(k|M|G)?h", re.IGNORECASE)
UNIT = {None: 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def proc_cpu_s(pid):
    """Seconds on a CPU of a process, all threads (schedstat: nanoseconds, unlike the 10 ms
    ticks of /proc/PID/stat), or None once it is gone."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def run_peer(cmd, cpus, seconds, warmup):
    """A peer miner for `seconds`; its rate per CPU-second after `warmup`.

    A peer prints a rate (hashes over wall time) at the end of each scan. Each printed rate is
    divided by the CPUs' worth of time the process got between that line and the one before
    (CPU time from /proc/PID/task/*/schedstat, sampled every 0.1 s); a busy spell then changes
    the wall rate and the CPU share together. Returns one per-CPU rate per line: cpuminer-opt
    prints about one line per 5 s, so the medians pool the lines of all rounds."""
    # Line-buffered, or the rates it prints arrive only at exit (stdout is a pipe).
    proc = subprocess.Popen(
        ["stdbuf", "-oL", "-eL", "taskset", "-c", cpus] + cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    started = time.monotonic()
    lines, samples = [], []

    def reader():
        for line in proc.stdout:
            m = RATE.search(line)
            if m:
                unit = UNIT[(m.group(2) or "").lower() or None]
                lines.append((time.monotonic(), float(m.group(1)) * unit))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    while time.monotonic() - started < seconds:
        cpu = proc_cpu_s(proc.pid)
        if cpu is not None:
            samples.append((time.monotonic(), cpu))
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    t.join(timeout=2)

    def cpu_at(when):
        before = [c for (w, c) in samples if w <= when]
        return before[-1] if before else None

    per_cpu, shares = [], []
    for (t0, _), (t1, rate) in zip(lines, lines[1:]):
        if t0 - started < warmup or t1 - t0 < 0.5:
            continue
        c0, c1 = cpu_at(t0), cpu_at(t1)
        if c0 is None or c1 is None or c1 <= c0:
            continue
        share = (c1 - c0) / (t1 - t0)
        per_cpu.append(rate / share)
        shares.append(share)
    if not per_cpu:
        return [], f"no usable rate lines ({len(lines)} in all)"
    return per_cpu, (
        f"{len(per_cpu)} rate lines, CPU share {statistics.mean(shares):.2f}, "
        f"spread {min(per_cpu) / 1e6:.1f}..{max(per_cpu) / 1e6:.1f} MH/s"
    )


def run_wgminer(wgminer, threads, path, cpus, seconds):
    cmd = [wgminer, "bench", "--backend", "cpu", "-t", str(threads), "-s", str(seconds), "--json"]
    if path != "auto":
        cmd += ["--cpu-path", path]
    proc = subprocess.Popen(
        ["taskset", "-c", cpus] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate()
    # communicate() reaped the child; its rusage is what RUSAGE_CHILDREN grew by.
    if proc.returncode != 0:
        return None, f"wgminer failed ({proc.returncode}): {err.strip()[-300:]}"
    try:
        report = json.loads(out.strip().splitlines()[-1])
        dev = report["devices"][0]
    except (ValueError, IndexError, KeyError) as e:
        return None, f"unreadable wgminer output ({e}): {out[-300:]}"
    return dev["hashes"], f"{dev['detail']}, wall {dev['hashes_per_second'] / 1e6:.2f} MH/s"


def children_cpu_s():
    r = os.times()
    return r.children_user + r.children_system


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wgminer", default="target/release/wgminer")
    ap.add_argument("--cpuminer-sha", help="cpuminer-opt built so that sha256d runs scanhash_sha256d_sha "
                    "(on an AVX-512 CPU: -march=native -mno-avx512f)")
    ap.add_argument("--cpuminer", help="cpuminer-opt built -march=native (its best sha256d path here)")
    ap.add_argument("--minerd", help="pooler cpuminer 2.5.1 (AVX2 sha256d_ms_8way where the CPU has AVX2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--warmup", type=float, default=4.0, help="peer seconds not counted")
    ap.add_argument("--cpus", default="0,1", help="CPUs for 2-thread runs; 1-thread runs use the last")
    a = ap.parse_args()

    one = a.cpus.split(",")[-1]
    # Everything runs at normal priority (SCHED_OTHER, nice 0), so that on a busy machine all
    # miners get CPU time on the same terms: cpuminer-opt would move its miner threads to
    # SCHED_IDLE at nice 19 (starved by any compile job) without `--cpu-priority 2`; minerd keeps
    # normal priority in benchmark mode.
    peer = lambda exe, n: [exe, "-a", "sha256d", "--benchmark", "-t", str(n)]
    opt = lambda exe, n: peer(exe, n) + ["--cpu-priority", "2"]
    # (label, kind, command-or-path, threads, cpus); pairs are (wgminer label, peer label).
    runs, pairs = [], []
    if a.cpuminer_sha:
        for n, cpus in ((1, one), (2, a.cpus)):
            runs += [(f"wgminer sha-ni -t{n}", "wg", "sha-ni", n, cpus),
                     (f"cpuminer-opt sha -t{n}", "peer", opt(a.cpuminer_sha, n), n, cpus)]
            pairs.append((f"wgminer sha-ni -t{n}", f"cpuminer-opt sha -t{n}"))
    if a.minerd:
        runs += [("wgminer avx2 -t1", "wg", "avx2", 1, one),
                 ("minerd avx2 -t1", "peer", peer(a.minerd, 1), 1, one)]
        pairs.append(("wgminer avx2 -t1", "minerd avx2 -t1"))
    if a.cpuminer:
        runs += [("wgminer avx512 -t1", "wg", "avx512", 1, one),
                 ("wgminer auto -t1", "wg", "auto", 1, one),
                 ("cpuminer-opt native -t1", "peer", opt(a.cpuminer, 1), 1, one)]
        pairs += [("wgminer avx512 -t1", "cpuminer-opt native -t1"),
                  ("wgminer auto -t1", "cpuminer-opt native -t1")]
    if not runs:
        sys.exit("nothing to compare: pass --cpuminer-sha, --cpuminer and/or --minerd")

    with open("/proc/cpuinfo") as f:
        info = f.read()
    field = lambda k: (re.search(rf"^{k}\s*:\s*(.*)$", info, re.M) or [None, "?"])[1]
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  {field('model name')}, "
          f"family {field('cpu family')} model {field('model')}, {os.cpu_count()} CPUs; "
          f"load {loadavg()}")
    results = {label: [] for label, *_ in runs}
    for r in range(1, a.rounds + 1):
        for label, kind, what, n, cpus in runs:
            before = loadavg()
            if kind == "wg":
                c0 = children_cpu_s()
                hashes, note = run_wgminer(a.wgminer, n, what, cpus, a.seconds)
                cpu = children_cpu_s() - c0
                rate = hashes / cpu if hashes and cpu > 0 else None
                note += f", cpu {cpu:.1f}s"
                if rate:
                    results[label].append(rate)
            else:
                per_line, note = run_peer(what, cpus, a.seconds, a.warmup)
                results[label] += per_line
                rate = statistics.median(per_line) if per_line else None
            shown = f"{rate / 1e6:7.2f}" if rate else "    n/a"
            print(f"round {r} {label:24} {shown} MH/s per CPU-s  ({note}; load {before} -> {loadavg()})",
                  flush=True)

    med = {k: statistics.median(v) for k, v in results.items() if v}
    print("\n| run | median MH/s per CPU-second | samples (wgminer: runs; peers: rate lines) |")
    print("|---|---:|---:|")
    for label, *_ in runs:
        if label in med:
            print(f"| {label} | {med[label] / 1e6:.2f} | {len(results[label])} |")
    print("\n| wgminer | peer | ratio |")
    print("|---|---|---:|")
    for w, p in pairs:
        if w in med and p in med:
            print(f"| {w} ({med[w] / 1e6:.2f}) | {p} ({med[p] / 1e6:.2f}) | {med[w] / med[p]:.2f}x |")


if __name__ == "__main__":
    main()
