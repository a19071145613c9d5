"""Delivery soak: memory while Respan is unreachable, draining the spool, and throughput.

Runs in ours' environment, real openai SDK calls over an in-process mock transport. 1. Soak:
--calls calls while Respan is unreachable (base URL on a closed loopback port): RSS before and
after (VmRSS; budget +64 MB after 100k calls) and that every log is in the spool. Then a
Collector starts on that port (in its own process) and a fresh exporter drains the spool for up
to --drain-seconds: logs/s, unthrottled unless --drain-bulk-per-minute says otherwise (Respan
allows 30 bulk requests of up to 500 logs a minute, 250 logs/s). 2. Throughput:
--throughput-calls calls as fast as one thread makes them, delivered to a Collector in another
process: calls/s made, logs/s delivered end to end, and process CPU per call against the bare
call's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "peers")]

from common import CHAT_BODY, CollectorProcess, header, log, mock_client  # noqa: E402


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, help="calls with Respan unreachable (100,000; --quick 10,000)")
    parser.add_argument("--drain-seconds", type=float, help="longest the drain is watched (60; --quick 15)")
    parser.add_argument("--drain-bulk-per-minute", type=float, default=0, help="0: unthrottled")
    parser.add_argument("--throughput-calls", type=int, help="(10,000; --quick 2,000)")


def run(args: argparse.Namespace) -> str:
    import envs

    started = time.time()
    calls = args.calls or (10_000 if args.quick else 100_000)
    drain = args.drain_seconds or (15.0 if args.quick else 60.0)
    throughput = args.throughput_calls or (2_000 if args.quick else 10_000)
    version = envs.openai_versions([3], log=log)[3]
    env = envs.ensure_env("ours", 3, version, log=log)
    if not env["ok"]:
        return f"## Delivery soak\n\nnot run: {env['error']}\n"
    cmd = [env["python"], os.path.abspath(__file__), "--child", str(calls), str(drain)]
    cmd += [str(args.drain_bulk_per_minute), str(throughput)]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_") and k != "PYTHONPATH"}
    log(f"soak: {calls:,} calls with Respan unreachable, then the drain and {throughput:,} delivered ...")
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env, timeout=3600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return f"## Delivery soak\n\nfailed: {done.stderr.strip()[-600:]}\n"
    r = json.loads(lines[-1])
    limit = (
        f"{args.drain_bulk_per_minute:g} bulk requests/min" if args.drain_bulk_per_minute else "unthrottled"
    )
    rss = r["rss1"] - r["rss0"]
    out = [
        "## Delivery soak: Respan unreachable, then back; throughput",
        "",
        *header(
            "python benchmarks/run.py soak" + (" --quick" if args.quick else ""),
            f"openai {r['openai']}, Python {r['python']}",
            started,
        ),
        "",
        "Method: " + " ".join(__doc__.split("\n\n", 1)[1].split()),  # type: ignore[union-attr]
        "",
        "| what | result |",
        "|---|---|",
        f"| calls with Respan unreachable | {calls:,} in {r['soak_wall']:.1f} s ({r['soak_wall'] / calls * 1e6:.0f} µs/call "
        f"wall, {r['soak_cpu'] / calls * 1e6:.0f} µs/call process CPU, flush included) |",
        f"| RSS before → after (peak) | {r['rss0']:.1f} → {r['rss1']:.1f} MB (+{rss:.1f}; peak +{r['peak'] - r['rss0']:.1f}); "
        f"budget +64 MB after 100k calls: {'OK' if rss <= 64 else 'OVER'} |",
        f"| logs in the spool | {r['spooled']:,} of {r['expected']:,} "
        f"({'all' if r['spooled'] == r['expected'] else 'MISSING'}) |",
        f"| drain ({limit}) | {r['drained']:,} logs in {r['drain_s']:.1f} s = {r['drained'] / r['drain_s']:,.0f} logs/s"
        + ("" if r["drained"] >= r["expected"] else f" (watched {drain:g} s, the rest left in the spool)")
        + " |",
        f"| throughput, one thread, Collector in another process (unthrottled) | {r['calls_per_s']:,.0f} calls/s made, "
        f"{r['logs_per_s']:,.0f} logs/s delivered end to end, process CPU {r['cpu']:.0f} µs/call "
        f"({r['cpu'] / r['bare_cpu']:.2f}× the bare call's {r['bare_cpu']:.0f}) |",
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the child
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spooled(directory: str) -> int:
    """Rows in the spool, read from its file as another process would."""
    rows = 0
    for name in os.listdir(directory):
        if name.endswith(".sqlite3"):
            with sqlite3.connect(f"file:{os.path.join(directory, name)}?mode=ro", uri=True, timeout=5) as db:
                tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
                rows += sum(
                    int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables if t == "logs"
                )  # noqa: S608
    return rows


def child(calls: int, drain_seconds: float, per_minute: float, throughput: int) -> None:
    import platform

    spool_root = tempfile.mkdtemp(prefix="respan-bench-soak-")
    soak_dir = os.path.join(spool_root, "soak")
    os.environ["RESPAN_SPOOL_DIR"] = soak_dir
    os.environ["RESPAN_RETRY_CAP"] = "2"  # notice a returning Respan within 2 s

    import openai

    import respan_instrument

    client = mock_client(lambda request: (CHAT_BODY, "application/json"))
    msgs = [{"role": "user", "content": "Say hello"}]

    def call() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

    out: dict[str, Any] = {"openai": openai.__version__, "python": platform.python_version()}
    # ---- 1. Respan unreachable
    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    for _ in range(2000):
        call()
    respan_instrument.instrument(api_key="bench", base_url=base)
    for _ in range(200):  # warm the instrumented path; these 200 go to the spool too
        call()
    assert respan_instrument.flush(30)
    gc.collect()
    out["rss0"] = out["peak"] = rss_mb()
    sampling = True

    def sample() -> None:
        while sampling:
            out["peak"] = max(out["peak"], rss_mb())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    out["soak_wall"] = time.perf_counter() - t0
    assert respan_instrument.flush(120), "flush() did not report every log spooled"
    out["soak_cpu"] = time.process_time() - cpu0
    sampling = False
    sampler.join()
    gc.collect()
    out["rss1"] = rss_mb()
    out["peak"] = max(out["peak"], out["rss1"])
    respan_instrument.uninstrument()
    out["expected"] = calls + 200
    out["spooled"] = spooled(soak_dir)

    # ---- the next exporter drains the spool
    collector = CollectorProcess(port)
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(per_minute if per_minute > 0 else 10**9)
    t0 = time.perf_counter()
    respan_instrument.instrument(api_key="bench", base_url=base)
    while collector.ask("count") < out["expected"] and time.perf_counter() - t0 < drain_seconds:
        time.sleep(0.05)
    out["drain_s"] = time.perf_counter() - t0
    out["drained"] = collector.ask("count")
    respan_instrument.uninstrument()
    collector.close()

    # ---- 2. throughput, delivered to a Collector in another process
    os.environ["RESPAN_SPOOL_DIR"] = os.path.join(spool_root, "throughput")
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(10**9)
    collector = CollectorProcess()
    cpu0 = time.process_time()
    for _ in range(throughput):
        call()
    out["bare_cpu"] = (time.process_time() - cpu0) / throughput * 1e6
    respan_instrument.instrument(api_key="bench", base_url=collector.url + "/api")
    for _ in range(200):
        call()
    assert respan_instrument.flush(60)
    collector.wait_for(200, 60)
    collector.ask("reset")
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(throughput):
        call()
    made = time.perf_counter() - t0
    assert respan_instrument.flush(60)
    collector.wait_for(throughput, 600)
    out["calls_per_s"] = throughput / made
    out["logs_per_s"] = throughput / (time.perf_counter() - t0)
    out["cpu"] = (time.process_time() - cpu0) / throughput * 1e6
    respan_instrument.uninstrument()
    collector.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
