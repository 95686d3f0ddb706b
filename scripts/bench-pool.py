#!/usr/bin/env python3
"""A minimal local Stratum V1 pool for benchmarking share delivery (stdlib only).

It behaves the way public-pool does towards a new miner:

  mining.subscribe        -> extranonce1 (4 bytes, one per connection), extranonce2_size 4
  mining.configure        -> {"version-rolling": false}   (no version rolling)
  mining.suggest_difficulty -> remembered (answered true); if it arrives after authorize and
                             differs from the difficulty in force, a set_difficulty follows at once
  mining.authorize        -> true, then
                               mining.set_difficulty <--initial-diff, 16384>
                               mining.notify <job 0, clean>
                               mining.set_difficulty <suggested, else --diff>
                             A miner that applies a difficulty only to jobs notified after it
                             mines job 0 at 16384 and sends no share until the next notify.
  then a new job every --job-interval seconds (every --clean-every-th one clean).

Every mining.submit is checked for real: coinbase = coinb1 + extranonce1 + extranonce2 + coinb2,
sha256d, merkle root with the job's branch, the 80-byte header (version, prevhash in internal
byte order -- the notify sends it with each 4-byte word byte-swapped --, merkle root, ntime,
nbits, nonce; the 32-bit fields little-endian in the header, big-endian hex on the wire), sha256d,
compared as a little-endian 256-bit number with floor(0xffff * 2^208 / difficulty).

A share is accepted if it meets the difficulty current when it is received OR the one in force
when its job was sent (both counts are reported). Rejections: "job not found" (code 21) for an
unknown job id or a job older than the last clean one (counted as stale when we sent that job),
"duplicate share" (22), "low difficulty share" (23), anything malformed (20, invalid).

Output: with --share-log FILE one JSON line per submit (receive time, job, result, ...); on
SIGTERM/SIGINT or after --duration seconds one JSON summary line on stdout (and in --out FILE).
With --port 0 (the default) the kernel picks a free port; --port-file FILE receives it.

  python3 scripts/bench-pool.py --port 3333 --diff 0.001 --duration 60
"""

import argparse
import asyncio
import hashlib
import json
import math
import os
import signal
import struct
import sys
import time
from fractions import Fraction

DIFF1 = 0xFFFF << 208  # pool difficulty 1 (bdiff/pdiff of Stratum pools)


def sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def to_fraction(d) -> Fraction:
    """A difficulty from the wire (int/float) or the command line (decimal string), exactly."""
    if isinstance(d, str):
        return Fraction(d)
    return Fraction(d)  # floats convert exactly


def target_for(diff: Fraction) -> int:
    if diff <= 0:
        raise ValueError("difficulty must be > 0")
    return (DIFF1 * diff.denominator) // diff.numerator


def swap_words(b: bytes) -> bytes:
    """Reverse the bytes of each 4-byte word: internal order <-> Stratum's prevhash string."""
    return b"".join(b[i:i + 4][::-1] for i in range(0, len(b), 4))


def push(data: bytes) -> bytes:
    assert len(data) < 0x4C
    return bytes([len(data)]) + data


def script_num(n: int) -> bytes:
    """Minimal CScriptNum encoding (BIP34 height)."""
    out = bytearray()
    while n:
        out.append(n & 0xFF)
        n >>= 8
    if out and out[-1] & 0x80:
        out.append(0)
    return bytes(out)


def make_coinbase_parts(height: int, en_size: int, tag: bytes, value_sat: int):
    """A valid-looking coinbase transaction (legacy serialization) split around the extranonce:
    version | 1 input (null outpoint, scriptSig = <height> <push en1+en2> <tag>, seq) |
    1 output (P2WPKH) | locktime."""
    height_push = push(script_num(height))
    tag_push = push(tag)
    script_len = len(height_push) + 1 + en_size + len(tag_push)
    coinb1 = (
        struct.pack("<i", 1)
        + b"\x01"
        + b"\x00" * 32
        + b"\xff\xff\xff\xff"
        + bytes([script_len])
        + height_push
        + bytes([en_size])  # the push opcode for extranonce1 + extranonce2
    )
    out_script = b"\x00\x14" + hashlib.sha256(tag).digest()[:20]
    coinb2 = (
        tag_push
        + b"\xff\xff\xff\xff"
        + b"\x01"
        + struct.pack("<q", value_sat)
        + bytes([len(out_script)])
        + out_script
        + b"\x00\x00\x00\x00"
    )
    return coinb1, coinb2


class Job:
    __slots__ = ("id", "index", "clean", "prevhash", "coinb1", "coinb2", "branch", "version",
                 "nbits", "ntime", "diff", "sent_at", "shares", "accepted")

    def notify_params(self):
        return [
            self.id,
            swap_words(self.prevhash).hex(),
            self.coinb1.hex(),
            self.coinb2.hex(),
            [h.hex() for h in self.branch],
            "%08x" % self.version,
            "%08x" % self.nbits,
            "%08x" % self.ntime,
            self.clean,
        ]


def percentile(sorted_vals, q):
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q / 100 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def dispersion(times, start, end, width):
    """Variance/mean of the counts in consecutive windows of `width` s (1 for a Poisson process)."""
    n = int((end - start) // width)
    if n < 2 or not times:
        return None
    counts = [0] * n
    for t in times:
        i = int((t - start) // width)
        if 0 <= i < n:
            counts[i] += 1
    mean = sum(counts) / n
    if mean == 0:
        return None
    var = sum((c - mean) ** 2 for c in counts) / (n - 1)
    return var / mean


class Stats:
    def __init__(self):
        self.counts = {k: 0 for k in ("received", "accepted", "stale", "unknown_job",
                                      "low_difficulty", "duplicate", "invalid", "unauthorized")}
        self.accepted_meets_current = 0
        self.accepted_meets_job = 0
        self.accepted_only_current = 0  # met the difficulty at receive time, not the job's
        self.accepted_only_job = 0      # met the job's difficulty, not the current one
        self.accepted_work = Fraction(0)  # sum of the difficulties credited (current at receive)
        self.recv_times = []             # monotonic receive time of every submit
        self.accepted_times = []
        self.invalid_reasons = {}
        self.connections = 0
        self.authorized_at = None        # first authorize (monotonic)
        self.first_submit_at = None
        self.first_accept_at = None
        self.first_submit_job = None
        self.disconnected_at = None
        self.jobs = []                   # every Job sent (all connections)
        self.suggested = []
        self.clients = []


class Pool:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.next_en1 = int.from_bytes(os.urandom(4), "big")
        self.job_counter = 0
        self.stop = asyncio.Event()
        self.share_log = open(args.share_log, "w", buffering=1) if args.share_log else None
        self.t0 = time.monotonic()

    # -- jobs ---------------------------------------------------------------------------------
    def new_job(self, conn, clean: bool):
        j = Job()
        self.job_counter += 1
        j.id = "%x" % self.job_counter
        j.index = conn.jobs_sent
        conn.jobs_sent += 1
        j.clean = clean
        if clean or conn.prevhash is None:
            conn.prevhash = os.urandom(32)
            conn.height += 1
        j.prevhash = conn.prevhash
        j.coinb1, j.coinb2 = make_coinbase_parts(
            conn.height, 4 + 4, b"/wgminer-bench-pool/" + j.id.encode(), 312500000)
        j.branch = [os.urandom(32) for _ in range(self.args.branch)]
        j.version = 0x20000000
        j.nbits = 0x17034219
        j.ntime = int(time.time())
        j.diff = conn.diff
        j.sent_at = time.monotonic()
        j.shares = 0
        j.accepted = 0
        conn.jobs[j.id] = j
        if clean:
            for old in conn.jobs.values():
                if old is not j:
                    conn.stale_ids.add(old.id)
            conn.live = {j.id}
        else:
            conn.live.add(j.id)
        self.stats.jobs.append(j)
        return j

    async def job_loop(self, conn):
        try:
            while not conn.closed:
                await asyncio.sleep(self.args.job_interval)
                if conn.closed:
                    break
                clean = self.args.clean_every > 0 and conn.jobs_sent % self.args.clean_every == 0
                j = self.new_job(conn, clean)
                await conn.send({"id": None, "method": "mining.notify", "params": j.notify_params()})
        except (ConnectionError, asyncio.CancelledError):
            pass

    # -- share check --------------------------------------------------------------------------
    def check_share(self, conn, params, now):
        """Returns (result, reason, detail dict)."""
        st = self.stats
        detail = {}
        if not conn.authorized:
            return "unauthorized", "unauthorized worker", detail
        if not isinstance(params, list) or len(params) < 5:
            return "invalid", "malformed submit", detail
        _worker, job_id, en2_hex, ntime_hex, nonce_hex = params[:5]
        vbits_hex = params[5] if len(params) > 5 else None
        detail["job"] = job_id
        job = conn.jobs.get(job_id)
        if job is None:
            return "unknown_job", "job not found", detail
        detail["job_index"] = job.index
        detail["job_age_s"] = round(now - job.sent_at, 6)
        job.shares += 1
        if job_id in conn.stale_ids:
            return "stale", "job not found", detail
        try:
            en2 = bytes.fromhex(en2_hex)
            ntime = int(ntime_hex, 16)
            nonce = int(nonce_hex, 16)
            if len(ntime_hex) != 8 or len(nonce_hex) != 8:
                raise ValueError("ntime/nonce must be 8 hex digits")
            vbits = int(vbits_hex, 16) if vbits_hex is not None else None
        except (ValueError, TypeError) as e:
            return "invalid", "malformed submit: %s" % e, detail
        if len(en2) != 4:
            return "invalid", "extranonce2 must be 4 bytes", detail
        if not (job.ntime - 600 <= ntime <= int(time.time()) + 7200):
            return "invalid", "ntime out of range", detail
        version = job.version
        if vbits is not None:
            if vbits & ~conn.version_mask:
                if vbits == job.version:  # some miners send the full version
                    pass
                else:
                    return "invalid", "version bits outside the negotiated mask", detail
            else:
                version = (job.version & ~conn.version_mask) | (vbits & conn.version_mask)
        key = (job_id, en2, ntime, nonce, version)
        if key in conn.seen:
            return "duplicate", "duplicate share", detail
        conn.seen.add(key)

        coinbase = job.coinb1 + conn.en1 + en2 + job.coinb2
        root = sha256d(coinbase)
        for h in job.branch:
            root = sha256d(root + h)
        header = (struct.pack("<I", version) + job.prevhash + root
                  + struct.pack("<III", ntime, job.nbits, nonce))
        h = sha256d(header)
        value = int.from_bytes(h, "little")
        detail["hash"] = h[::-1].hex()
        detail["share_diff"] = float(Fraction(DIFF1, value)) if value else float("inf")
        detail["current_diff"] = float(conn.diff)
        detail["job_diff"] = float(job.diff)
        meets_cur = value <= target_for(conn.diff)
        meets_job = value <= target_for(job.diff)
        detail["meets_current"] = meets_cur
        detail["meets_job"] = meets_job
        if not (meets_cur or meets_job):
            return "low_difficulty", "low difficulty share", detail
        job.accepted += 1
        st.accepted_meets_current += meets_cur
        st.accepted_meets_job += meets_job
        st.accepted_only_current += meets_cur and not meets_job
        st.accepted_only_job += meets_job and not meets_cur
        st.accepted_work += conn.diff if meets_cur else job.diff
        return "accepted", None, detail

    # -- connection ---------------------------------------------------------------------------
    async def handle(self, reader, writer):
        conn = Conn(writer)
        self.stats.connections += 1
        self.stats.clients.append(conn)
        conn.en1 = (self.next_en1 & 0xFFFFFFFF).to_bytes(4, "big")
        self.next_en1 += 1
        conn.diff = to_fraction(self.args.diff)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                now = time.monotonic()
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                await self.on_message(conn, msg, now)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            conn.closed = True
            if conn.job_task:
                conn.job_task.cancel()
            if conn.authorized:
                self.stats.disconnected_at = time.monotonic()
            try:
                writer.close()
            except Exception:
                pass

    async def on_message(self, conn, msg, now):
        method = msg.get("method")
        mid = msg.get("id")
        params = msg.get("params") or []
        st = self.stats
        if method == "mining.subscribe":
            await conn.send({"id": mid, "error": None, "result": [
                [["mining.set_difficulty", "b1"], ["mining.notify", "b1"]], conn.en1.hex(), 4]})
        elif method == "mining.configure":
            await conn.send({"id": mid, "error": None, "result": {"version-rolling": False}})
        elif method == "mining.extranonce.subscribe":
            await conn.send({"id": mid, "error": None, "result": False})
        elif method == "mining.suggest_difficulty":
            ok = False
            try:
                d = to_fraction(params[0])
                ok = d > 0
            except (IndexError, TypeError, ValueError, ZeroDivisionError):
                pass
            await conn.send({"id": mid, "error": None, "result": ok})
            if ok:
                conn.suggested = d
                st.suggested.append({"t_s": round(now - self.t0, 6), "diff": float(d),
                                     "after_authorize": conn.authorized})
                if conn.authorized and d != conn.diff and not conn.used_suggestion:
                    conn.used_suggestion = True
                    conn.diff = d
                    await conn.send({"id": None, "method": "mining.set_difficulty",
                                     "params": [float(d)]})
        elif method == "mining.authorize":
            conn.authorized = True
            conn.authorized_at = now
            if st.authorized_at is None:
                st.authorized_at = now
            await conn.send({"id": mid, "error": None, "result": True})
            initial = to_fraction(self.args.initial_diff)
            conn.diff = initial
            await conn.send({"id": None, "method": "mining.set_difficulty",
                             "params": [float(initial)]})
            j = self.new_job(conn, True)
            await conn.send({"id": None, "method": "mining.notify", "params": j.notify_params()})
            if conn.suggested is not None:
                conn.used_suggestion = True
                conn.diff = conn.suggested
            else:
                conn.diff = to_fraction(self.args.diff)
            await conn.send({"id": None, "method": "mining.set_difficulty",
                             "params": [float(conn.diff)]})
            conn.job_task = asyncio.ensure_future(self.job_loop(conn))
        elif method == "mining.submit":
            st.counts["received"] += 1
            st.recv_times.append(now)
            if st.first_submit_at is None:
                st.first_submit_at = now
            result, reason, detail = self.check_share(conn, params, now)
            if st.first_submit_job is None and "job_index" in detail:
                st.first_submit_job = detail["job_index"]
            st.counts[result] += 1
            if result == "accepted":
                st.accepted_times.append(now)
                if st.first_accept_at is None:
                    st.first_accept_at = now
                await conn.send({"id": mid, "error": None, "result": True})
            else:
                if result in ("invalid", "unauthorized"):
                    st.invalid_reasons[reason] = st.invalid_reasons.get(reason, 0) + 1
                code = {"stale": 21, "unknown_job": 21, "duplicate": 22,
                        "low_difficulty": 23, "unauthorized": 24}.get(result, 20)
                await conn.send({"id": mid, "result": None, "error": [code, reason, None]})
            if self.share_log:
                rec = {"recv_unix": round(time.time(), 6),
                       "t_s": round(now - (conn.authorized_at or self.t0), 6),
                       "result": result}
                if reason:
                    rec["reason"] = reason
                rec.update(detail)
                self.share_log.write(json.dumps(rec) + "\n")
        elif mid is not None:
            await conn.send({"id": mid, "result": None, "error": [20, "unknown method", None]})

    # -- summary ------------------------------------------------------------------------------
    def summary(self, end):
        st = self.stats
        start = st.authorized_at
        mine_end = st.disconnected_at or end
        out = {"event": "bench_pool_summary",
               "config": {"diff": self.args.diff, "initial_diff": self.args.initial_diff,
                          "job_interval_s": self.args.job_interval,
                          "clean_every": self.args.clean_every, "branch": self.args.branch},
               "connections": st.connections,
               "suggested": st.suggested,
               "shares": dict(st.counts),
               "accepted_meeting_current_diff": st.accepted_meets_current,
               "accepted_meeting_job_diff": st.accepted_meets_job,
               "accepted_only_current_diff": st.accepted_only_current,
               "accepted_only_job_diff": st.accepted_only_job,
               "accepted_work_diff1": float(st.accepted_work),
               "invalid_reasons": st.invalid_reasons}
        if start is not None:
            dur = max(1e-9, mine_end - start)
            out["mining_s"] = round(dur, 3)
            out["share_rate_per_s"] = st.counts["accepted"] / dur
            out["first_share_delay_s"] = (round(st.first_submit_at - start, 6)
                                          if st.first_submit_at else None)
            out["first_accepted_delay_s"] = (round(st.first_accept_at - start, 6)
                                             if st.first_accept_at else None)
            out["first_share_job_index"] = st.first_submit_job
        t = st.recv_times
        gaps = sorted(b - a for a, b in zip(t, t[1:]))
        ia = {"n_gaps": len(gaps)}
        if gaps:
            mean = (t[-1] - t[0]) / len(gaps)
            ia.update({
                "median_ms": round(percentile(gaps, 50) * 1e3, 3),
                "p99_ms": round(percentile(gaps, 99) * 1e3, 3),
                "max_ms": round(gaps[-1] * 1e3, 3),
                "mean_ms": round(mean * 1e3, 3),
                "frac_within_5ms": sum(g < 0.005 for g in gaps) / len(gaps),
                # what a Poisson stream at the same mean rate would give
                "poisson_frac_within_5ms": 1 - math.exp(-0.005 / mean) if mean > 0 else None,
                "poisson_median_ms": round(mean * math.log(2) * 1e3, 3),
                "poisson_p99_ms": round(mean * math.log(100) * 1e3, 3),
                "dispersion_100ms": dispersion(t, start or t[0], mine_end, 0.1),
                "dispersion_1s": dispersion(t, start or t[0], mine_end, 1.0),
            })
        out["inter_arrival"] = ia
        out["jobs"] = [{"index": j.index, "id": j.id, "clean": j.clean,
                        "sent_s": round(j.sent_at - (start or self.t0), 3),
                        "diff_at_send": float(j.diff), "shares": j.shares,
                        "accepted": j.accepted} for j in st.jobs]
        return out


class Conn:
    def __init__(self, writer):
        self.writer = writer
        self.en1 = b""
        self.diff = Fraction(1)
        self.suggested = None
        self.used_suggestion = False
        self.authorized = False
        self.authorized_at = None
        self.jobs = {}
        self.live = set()
        self.stale_ids = set()
        self.seen = set()
        self.jobs_sent = 0
        self.prevhash = None
        self.height = 100000
        self.version_mask = 0
        self.closed = False
        self.job_task = None
        self.lock = asyncio.Lock()

    async def send(self, obj):
        if self.closed:
            return
        async with self.lock:
            self.writer.write((json.dumps(obj) + "\n").encode())
            await self.writer.drain()


def self_test():
    """Checks the header/merkle construction on Bitcoin's block 125552, the usual example."""
    # prev block 00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81 etc.
    ver = 1
    prev = bytes.fromhex("00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81")[::-1]
    root = bytes.fromhex("2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3")[::-1]
    hdr = struct.pack("<I", ver) + prev + root + struct.pack("<III", 1305998791, 440711666, 2504433986)
    h = sha256d(hdr)[::-1].hex()
    assert h == "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d", h
    assert swap_words(swap_words(prev)) == prev
    assert target_for(Fraction(1)) == DIFF1
    print("self-test ok")


async def main_async(args):
    pool = Pool(args)
    server = await asyncio.start_server(pool.handle, args.host, args.port, limit=1 << 16)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("bench-pool listening on %s:%d" % (args.host, port), file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pool.stop.set)
    if args.duration > 0:
        loop.call_later(args.duration, pool.stop.set)
    await pool.stop.wait()
    end = time.monotonic()
    server.close()
    summary = pool.summary(end)
    for c in pool.stats.clients:
        c.closed = True
        if c.job_task:
            c.job_task.cancel()
        try:
            c.writer.close()
        except Exception:
            pass
    line = json.dumps(summary)
    print(line, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    if pool.share_log:
        pool.share_log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port (see --port-file)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--diff", default="1",
                    help="share difficulty after the initial one when the miner suggests none")
    ap.add_argument("--initial-diff", default="16384",
                    help="difficulty sent before the first job (public-pool: 16384)")
    ap.add_argument("--job-interval", type=float, default=10.0, help="seconds between jobs")
    ap.add_argument("--clean-every", type=int, default=3,
                    help="every Nth job is clean (0: only the first)")
    ap.add_argument("--branch", type=int, default=2, help="merkle branch length")
    ap.add_argument("--duration", type=float, default=0, help="stop after this many s (0: at SIGTERM)")
    ap.add_argument("--share-log", help="one JSON line per submit")
    ap.add_argument("--out", help="also write the summary JSON here")
    ap.add_argument("--self-test", action="store_true", help="check the hashing and exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    for name in ("diff", "initial_diff"):
        try:
            if to_fraction(getattr(args, name)) <= 0:
                raise ValueError
        except (ValueError, ZeroDivisionError):
            ap.error("--%s must be a positive number" % name.replace("_", "-"))
    if args.job_interval <= 0:
        ap.error("--job-interval must be > 0")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
