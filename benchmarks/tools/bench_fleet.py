"""A fleet against one organisation-wide rate limit: N processes (1, 4, 16) making calls, each
delivering through its own spool to one loopback Respan, as request logs and as OTLP spans.

The loopback Respan (its own process) allows at most `--per-minute` batched requests (bulk logs
and OTLP trace posts alike) in any rolling minute across every client, as Respan limits bulk
requests per organisation, answering 429 with `Retry-After` beyond it. Each process is told that
limit (RESPAN_BULK_PER_MINUTE) but not how many share it, as in a real fleet.

Reported per mode and N: logs accepted per second (from the first call to the last acceptance),
call-to-accepted latency (call end to acceptance, p50/p99), 429 answers, and the spool high-water
mark (most rows waiting in all the processes' spools at once, sampled every 0.2 s). Each process
stays after its calls until its spool is empty (up to `--drain` s).

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/bench_fleet.py [--seconds 8] [--rate 50] [--per-minute 60]
(needs the `otlp` extra for the otlp rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Any

SERVER = r"""
import bisect, json, sys, threading, time
from collections import deque
from datetime import datetime
from respan_instrument.local import Collector
from respan_instrument.local import collector as c

window = 60.0
per_window = float(sys.argv[1])
lock = threading.Lock()
sent = deque()            # times of accepted batched requests, the last `window` seconds
state = {"r429": 0, "batched": 0, "single": 0}
latencies = []

def admit(path):
    if path not in (c.BULK_PATH, *c.TRACE_PATHS):
        state["single"] += 1
        return None
    now = time.time()
    with lock:
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) >= per_window:
            state["r429"] += 1
            return max(0.05, sent[0] + window - now)
        sent.append(now)
        state["batched"] += 1
    return None

class Limited(c._CollectorHandler):
    def _inject_fault(self):
        wait = admit(self._path)
        if wait is None:
            return False
        self._reply(429, {"detail": "rate limited", "retry_after": round(wait, 3)},
                    {"Retry-After": str(max(1, round(wait)))})
        return True

class Fleet(Collector):
    def _handler_class(self):
        Limited.collector = self
        return Limited
    def _accept(self, log):
        ended = datetime.fromisoformat(log["timestamp"].replace("Z", "+00:00")).timestamp()
        with lock:
            latencies.append(time.time() - ended)
        return super()._accept(log)
    def _accept_spans(self, spans):
        now = time.time()
        with lock:
            latencies.extend(now - s["end_time_unix_nano"] / 1e9 for s in spans)
        super()._accept_spans(spans)

server = Fleet()
server.start()
print(server.url, flush=True)
for line in sys.stdin:
    with lock:
        lat = sorted(latencies)
    count = len(server.logs) + len(server.spans)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    if line.strip() == "reset":
        with lock:
            latencies.clear(); sent.clear(); state.update(r429=0, batched=0, single=0)
        server.clear()
    print(json.dumps({"count": count, "p50": pick(0.5), "p99": pick(0.99), "max": lat[-1] if lat else 0,
                      "last": time.time(), **state}), flush=True)
"""

WORKER = r"""
import json, os, sys, time
from common import CHAT_BODY, mock_client
import respan_instrument
respan_instrument.instrument()
client = mock_client(lambda request: (CHAT_BODY, "application/json"))
seconds, rate = float(sys.argv[1]), float(sys.argv[2])
msgs = [{"role": "user", "content": "Say hello"}]
t0 = time.time(); n = 0
while time.time() - t0 < seconds:
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    n += 1
    ahead = t0 + n / rate - time.time()
    if ahead > 0:
        time.sleep(ahead)
print(json.dumps({"calls": n, "start": t0}), flush=True)
# flush() is satisfied once the logs are safe in the spool; stay until they were accepted
from respan_instrument.deliver.spool import status
deadline = time.time() + float(sys.argv[3])
ok = respan_instrument.flush(float(sys.argv[3]))
while status(os.environ["RESPAN_SPOOL_DIR"])["rows"] and time.time() < deadline:
    time.sleep(0.2)
print(json.dumps({"flushed": ok and not status(os.environ["RESPAN_SPOOL_DIR"])["rows"]}), flush=True)
"""


class Server:
    def __init__(self, per_minute: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(per_minute)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def ask(self, command: str = "stats") -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def spooled(dirs: list[str]) -> int:
    rows = 0
    for d in dirs:
        path = os.path.join(d, "spool.sqlite3")
        if not os.path.exists(path):
            continue
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.5) as db:
                rows += int(db.execute("SELECT COUNT(*) FROM logs").fetchone()[0])
        except sqlite3.Error:
            pass
    return rows


def run(server: Server, mode: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    server.ask("reset")
    root = tempfile.mkdtemp(prefix="respan-fleet-")
    dirs = [os.path.join(root, f"p{i}") for i in range(n)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env.update(
        RESPAN_API_KEY="rk-fleet",
        RESPAN_BASE_URL=server.url + "/api",
        RESPAN_EXPORT=mode,
        RESPAN_BULK_PER_MINUTE=str(args.per_minute),
        RESPAN_RETRY_CAP="10",
        RESPAN_EXIT_TIMEOUT="1",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(args.seconds), str(args.rate), str(args.drain)],
            env={**env, "RESPAN_SPOOL_DIR": d},
            stdout=subprocess.PIPE,
            text=True,
        )
        for d in dirs
    ]
    high = 0
    while any(p.poll() is None for p in procs):
        high = max(high, spooled(dirs))
        time.sleep(0.2)
    calls, starts, flushed = 0, [], 0
    for p in procs:
        assert p.stdout is not None
        lines = [json.loads(line) for line in p.stdout.read().splitlines() if line.startswith("{")]
        for line in lines:
            calls += line.get("calls", 0)
            if "start" in line:
                starts.append(line["start"])
            flushed += bool(line.get("flushed"))
    stats = server.ask()
    took = max(stats["last"] - min(starts), 1e-9) if starts else float("nan")
    return {
        "mode": mode,
        "n": n,
        "calls": calls,
        "delivered": stats["count"],
        "per_s": stats["count"] / took,
        "p50": stats["p50"],
        "p99": stats["p99"],
        "r429": stats["r429"],
        "batched": stats["batched"],
        "single": stats["single"],
        "high": high,
        "flushed": f"{flushed}/{n}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds each process makes calls")
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second per process")
    parser.add_argument(
        "--per-minute", type=float, default=120.0, help="organisation-wide batched requests a minute"
    )
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds each process may deliver at the end"
    )
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--modes", default="logs,otlp")
    args = parser.parse_args()
    server = Server(args.per_minute)
    rows = []
    try:
        for mode in args.modes.split(","):
            for n in (int(x) for x in args.sizes.split(",")):
                rows.append(run(server, mode, n, args))
                print(f"{mode} N={n} done", file=sys.stderr)
    finally:
        server.close()
    print(
        f"\n{args.rate:g} calls/s per process for {args.seconds:g} s; loopback Respan: "
        f"{args.per_minute:g} batched requests a minute for the whole fleet; {os.cpu_count()} CPUs\n"
    )
    print(
        "| mode | N | calls | delivered | delivered logs/s | call→accepted p50 s | p99 s | 429s | batched posts | single posts | spool high-water (rows) | all accepted |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['n']} | {r['calls']} | {r['delivered']} | {r['per_s']:.0f} | {r['p50']:.2f} | "
            f"{r['p99']:.2f} | {r['r429']} | {r['batched']} | {r['single']} | {r['high']} | {r['flushed']} |"
        )


if __name__ == "__main__":
    main()
