#!/usr/bin/env python3
"""Bytes on the wire and share latency, Stratum V1 against Stratum V2, measured on one machine.

Starts wgminer's node core as a Template Provider (`wgminer node --sv2-tp-bind`, a chain that
retargets for a block every few seconds, so jobs come as new blocks do), SRI's pool_sv2 on it, and
SRI's translator_sv2 in front of the pool; then mines in interleaved rounds through a byte-counting
TCP proxy:
  V1: wgminer -o stratum+tcp://proxy  -> translator_sv2 -> pool_sv2   (JSON lines, plain text)
  V2: wgminer -o stratum2+tcp://proxy -> pool_sv2                      (binary frames, Noise-encrypted)
and prints, per protocol, the bytes up per submitted share and down per job or share answer (the
connection set-up amortised in both; its own bytes, from a short first run, are printed too), and the share round trip (submit to verdict) and find-to-hand-over latency from
the miner's own exit summary.

The proxy sits between the miner and the first hop only, so V1's bytes are the V1 wire's and V2's
the V2 wire's; the V1 round trip includes the translator's extra hop (say so when quoting it).

    scripts/sv2-wire.py WGMINER POOL_SV2 TRANSLATOR_SV2 [--rounds 2] [--seconds 60] [--threads 1]

The binaries: wgminer (e.g. target/release/wgminer), and SRI's roles as scripts/fetch-sri.sh
installs them (`fetch-sri.sh pool_sv2`, `fetch-sri.sh translator_sv2`).
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# SRI's published example key pair (the pool's Noise identity; test use only).
POOL_PUBLIC = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
POOL_SECRET = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc, limit=60):
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"{what} exited ({proc.returncode}) before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{what} does not listen on {port} after {limit} s")


class Counter:
    """A TCP proxy that counts the bytes each way (miner->pool 'up', pool->miner 'down')."""

    def __init__(self, target):
        self.target = target
        self.up = 0
        self.down = 0

    async def pipe(self, reader, writer, field):
        try:
            while data := await reader.read(65536):
                setattr(self, field, getattr(self, field) + len(data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def serve(self, reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self.pipe(reader, up_w, "up"), self.pipe(up_r, writer, "down")
        )


async def mine(args, url, counter, seconds, tag):
    """One miner run through `counter`'s proxy for `seconds`; its exit summary."""
    server = await asyncio.start_server(counter.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = url.format(port=port)
    proc = await asyncio.create_subprocess_exec(
        args.wgminer, "-o", url, "-u", f"wire.{tag}", "-p", "x",
        "--backend", "cpu", "-t", str(args.threads), "--json-log", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    lines = []

    async def read():
        while line := await proc.stdout.readline():
            lines.append(line.decode(errors="replace"))

    reading = asyncio.create_task(read())
    await asyncio.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    await asyncio.wait_for(proc.wait(), 30)
    await reading
    server.close()
    exit_event = None
    round_trips = []
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "exit":
            exit_event = ev["status"]
        if ev.get("event") == "accepted" and isinstance(ev.get("round_trip_ms"), (int, float)):
            round_trips.append(ev["round_trip_ms"])
    if exit_event is None:
        sys.exit(f"{tag}: no exit summary from wgminer; its output:\n{''.join(lines[-20:])}")
    return exit_event, round_trips


async def connection_setup(args, url, tag):
    """Bytes of a connection that sets up and gets its first job, then stops: the one-time cost."""
    counter = Counter(args.translator_port if tag == "v1" else args.pool_port)
    await mine(args, url, counter, 4, f"setup{tag}")
    return counter


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("wgminer")
    p.add_argument("pool_sv2")
    p.add_argument("translator_sv2")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--block-time", type=int, default=5)
    p.add_argument("--difficulty", default="0.02", help="the chain's first difficulty")
    args = p.parse_args()

    tmp = tempfile.mkdtemp(prefix="wgminer-wire-")
    procs = []
    try:
        tp_port, args.pool_port, args.translator_port = free_port(), free_port(), free_port()
        node = subprocess.Popen(
            [args.wgminer, "node", "--datadir", f"{tmp}/node", "--sv2-tp-bind", f"127.0.0.1:{tp_port}",
             "--difficulty", args.difficulty, "--block-time", str(args.block_time)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(node)
        key = None
        for line in node.stdout:
            m = re.search(r"authority_public_key\W+(\w{40,})", line)
            if m:
                key = m.group(1)
                break
        if key is None:
            sys.exit("wgminer node printed no Template Provider authority key")
        wait_port(tp_port, "wgminer node", node)
        with open(f"{tmp}/pool.toml", "w") as f:
            f.write(f'''authority_public_key = "{POOL_PUBLIC}"
authority_secret_key = "{POOL_SECRET}"
cert_validity_sec = 3600
listen_address = "127.0.0.1:{args.pool_port}"
coinbase_reward_script = "raw(0014{'07' * 20})"
server_id = 1
pool_signature = "wgminer-wire"
shares_per_minute = 30.0
share_batch_size = 1

[template_provider_type.Sv2Tp]
address = "127.0.0.1:{tp_port}"
public_key = "{key}"
''')
        with open(f"{tmp}/translator.toml", "w") as f:
            f.write(f'''downstream_address = "127.0.0.1"
downstream_port = {args.translator_port}
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
aggregate_channels = false

[downstream_difficulty_config]
min_individual_miner_hashrate = 10_000_000.0
shares_per_minute = 30.0
enable_vardiff = true
job_keepalive_interval_secs = 60

[[upstreams]]
address = "127.0.0.1"
port = {args.pool_port}
authority_pubkey = "{POOL_PUBLIC}"
user_identity = "wire"
''')
        log = open(f"{tmp}/roles.log", "w")
        env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
        pool = subprocess.Popen([args.pool_sv2, "-c", f"{tmp}/pool.toml"], stdout=log, stderr=log, env=env)
        procs.append(pool)
        wait_port(args.pool_port, "pool_sv2", pool)
        translator = subprocess.Popen([args.translator_sv2, "-c", f"{tmp}/translator.toml"],
                                      stdout=log, stderr=log, env=env)
        procs.append(translator)
        wait_port(args.translator_port, "translator_sv2", translator)

        urls = {
            "v1": "stratum+tcp://127.0.0.1:{port}",
            "v2": "stratum2+tcp://127.0.0.1:{port}/" + POOL_PUBLIC,
        }
        results = {"v1": [], "v2": []}

        async def run_all():
            setup = {t: await connection_setup(args, urls[t], t) for t in ("v1", "v2")}
            for r in range(args.rounds):
                for tag in ("v1", "v2") if r % 2 == 0 else ("v2", "v1"):
                    counter = Counter(args.translator_port if tag == "v1" else args.pool_port)
                    status, trips = await mine(args, urls[tag], counter, args.seconds, tag)
                    results[tag].append((counter, status, trips))
                    print(f"round {r + 1} {tag}: up {counter.up} B, down {counter.down} B, "
                          f"submitted {status['submitted']}, accepted {status['accepted']}, "
                          f"jobs {status['jobs']}", flush=True)
            return setup

        setup = asyncio.run(run_all())
        print(f"\nloadavg at the end: {open('/proc/loadavg').read().strip()}")
        print(f"{'':28}{'Stratum V1 (via translator)':>30}{'Stratum V2 (Noise)':>22}")

        def row(name, f):
            print(f"{name:28}{f('v1'):>30}{f('v2'):>22}")

        def per(tag, num, den):
            vals = [num(c, s) / den(c, s) for c, s, _ in results[tag] if den(c, s)]
            return f"{statistics.median(vals):.0f}" if vals else "n/a"

        row("set-up bytes (up/down)", lambda t: f"{setup[t].up}/{setup[t].down}")
        row("up bytes per submitted share", lambda t: per(t, lambda c, s: c.up, lambda c, s: s["submitted"]))
        # Downstream carries the jobs and each share's answer (the pool answers every share:
        # share_batch_size = 1): per message of either kind.
        row("down bytes per job or answer", lambda t: per(
            t, lambda c, s: c.down, lambda c, s: s["jobs"] + s["accepted"] + s["rejected"]))
        row("submitted shares per run", lambda t: "/".join(str(s["submitted"]) for _, s, _ in results[t]))
        row("jobs per run", lambda t: "/".join(str(s["jobs"]) for _, s, _ in results[t]))

        # Each run's bytes = set-up + per-message costs; with several runs of different counts
        # a least-squares fit separates them (down: jobs and answers; up: shares).
        def fit(t):
            rows = [(1.0, s["jobs"], s["accepted"] + s["rejected"], c.down) for c, s, _ in results[t]]
            if len(rows) < 3:
                return "n/a (3 rounds needed)"
            a = [[r[i] for r in rows] for i in range(3)]
            y = [r[3] for r in rows]
            # Normal equations, 3x3, by Cramer's rule (no numpy needed).
            m = [[sum(a[i][k] * a[j][k] for k in range(len(y))) for j in range(3)] for i in range(3)]
            v = [sum(a[i][k] * y[k] for k in range(len(y))) for i in range(3)]

            def det(q):
                return (q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1])
                        - q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0])
                        + q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0]))

            d = det(m)
            if abs(d) < 1e-9:
                return "n/a (runs too alike)"
            sol = []
            for i in range(3):
                q = [row[:] for row in m]
                for r in range(3):
                    q[r][i] = v[r]
                sol.append(det(q) / d)
            return f"{sol[1]:.0f} / {sol[2]:.0f}"

        row("fit: down B per job / answer", fit)

        def trips(t):
            all_trips = sorted(x for _, _, tr in results[t] for x in tr)
            if not all_trips:
                return "n/a"
            return f"{statistics.median(all_trips):.1f}/{all_trips[int(0.99 * (len(all_trips) - 1))]:.1f}"

        row("round trip ms (p50/p99)", trips)

        def handover(t):
            lat = [s.get("latency") for _, s, _ in results[t] if s.get("latency")]
            return f"{statistics.median(x['median_ms'] for x in lat):.2f}" if lat else "n/a"

        row("find-to-hand-over ms (median)", handover)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
