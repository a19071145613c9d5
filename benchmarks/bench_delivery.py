"""Durable delivery: memory while Respan is unreachable, draining the spool, and throughput.

    python benchmarks/bench_delivery.py [--calls 100000] [--throughput-calls 20000]
                                        [--drain-bulk-per-minute 30]

1. Soak: `--calls` real openai SDK calls (in-process mock transport) while Respan is unreachable
   (base URL on a closed loopback port). RSS before/after (VmRSS; budget +64 MB), the largest
   in-memory queue seen, and that every log is in the spool. Then a collector starts on that
   port (in its own process) and a fresh exporter drains the spool: time and logs/s. Draining
   honours Respan's bulk limit (30 requests/min, 500 logs each: 250 logs/s) unless
   `--drain-bulk-per-minute` says otherwise (0: unthrottled, to see the pipeline's own speed).
2. Throughput: calls as fast as one thread makes them, delivered to a collector in another
   process; end-to-end logs/s, process CPU per call against the bare call, and what the
   write-ahead to the spool (insert before posting, claim, delete after acceptance) costs per log.

Not part of the test suite; takes a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import CHAT_BODY, mock_client

COLLECTOR = """
import sys
from respan_instrument.local import Collector
count = 0
def on_log(log):
    global count
    count += 1
c = Collector(port=int(sys.argv[1]), on_log=on_log)
c.start()
print(c.url, flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(count, flush=True)
    elif line.strip() == "reset":
        count = 0
        c.clear()
        print(0, flush=True)
"""


class CollectorProcess:
    """A Respan-compatible collector in its own process, so its CPU is not counted as ours."""

    def __init__(self, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", COLLECTOR, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def ask(self, command: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def wait_for(self, n: int, timeout: float) -> float:
        """Seconds until the collector holds `n` logs (polling every 20 ms)."""
        t0 = time.perf_counter()
        while self.ask("count") < n:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"collector has {self.ask('count')} of {n} logs after {timeout} s")
            time.sleep(0.02)
        return time.perf_counter() - t0

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(5)


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


class SpoolClock:
    """Thread CPU spent inside the spool's write-ahead operations (append, claim, delete)."""

    def __init__(self) -> None:
        from respan_instrument.deliver.spool import Spool

        self.seconds: dict[str, float] = {"append": 0.0, "claim": 0.0, "delete": 0.0}
        self._originals: dict[str, Callable[..., Any]] = {}
        for name in self.seconds:
            original = getattr(Spool, name)
            self._originals[name] = original
            setattr(Spool, name, self._timed(name, original))

    def _timed(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] += time.thread_time() - t0

        return wrapper

    def reset(self) -> None:
        for name in self.seconds:
            self.seconds[name] = 0.0

    def restore(self) -> None:
        from respan_instrument.deliver.spool import Spool

        for name, original in self._originals.items():
            setattr(Spool, name, original)


def current_exporter() -> Any:
    from respan_instrument import _setup

    state = _setup._state
    assert state is not None and state.exporter is not None
    return state.exporter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--throughput-calls", type=int, default=20_000)
    parser.add_argument("--drain-bulk-per-minute", type=float, default=30)
    args = parser.parse_args()

    spool_root = tempfile.mkdtemp(prefix="respan-bench-")
    os.environ["RESPAN_SPOOL_DIR"] = os.path.join(spool_root, "soak")
    os.environ["RESPAN_RETRY_CAP"] = "2"  # notice a returning Respan within 2 s
    for name in ("RESPAN_API_KEY", "RESPAN_BASE_URL", "RESPAN_BULK_PER_MINUTE", "RESPAN_SCHEDULE_DELAY"):
        os.environ.pop(name, None)

    import openai

    import respan_instrument
    from respan_instrument._spool_dirs import resolve_dir
    from respan_instrument.deliver import spool as _spool

    client = mock_client(lambda request: (CHAT_BODY, "application/json"))
    msgs = [{"role": "user", "content": "Say hello"}]

    def call() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

    results: list[tuple[str, str]] = []

    # ---- 1. soak with Respan unreachable --------------------------------------------------
    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    for _ in range(2000):
        call()
    respan_instrument.instrument(api_key="bench", base_url=base)
    for _ in range(200):  # warm the instrumented path; these 200 go to the spool too
        call()
    assert respan_instrument.flush(30)
    gc.collect()
    rss0 = rss_mb()
    peak = {"queue": 0, "rss": rss0}
    sampling = True

    def sample() -> None:
        exporter = current_exporter()
        while sampling:
            peak["queue"] = max(peak["queue"], len(exporter._queue))
            peak["rss"] = max(peak["rss"], rss_mb())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(args.calls):
        call()
    soak_wall = time.perf_counter() - t0
    assert respan_instrument.flush(120), "flush() did not report every log spooled"
    soak_cpu = time.process_time() - cpu0
    sampling = False
    sampler.join()
    gc.collect()
    rss1 = rss_mb()
    lost = current_exporter().lost
    compacted, lent = current_exporter()._compacted, current_exporter()._lent
    respan_instrument.uninstrument()
    status = _spool.status(resolve_dir())
    spooled = status["rows"]
    expected = args.calls + 200
    results += [
        (
            "soak: calls with Respan unreachable",
            f"{args.calls:,} in {soak_wall:.1f} s "
            f"({soak_wall / args.calls * 1e6:.0f} µs/call wall, {soak_cpu / args.calls * 1e6:.0f} µs/call process CPU)",
        ),
        (
            "soak: RSS before → after (peak)",
            f"{rss0:.1f} → {rss1:.1f} MB (+{rss1 - rss0:.1f} MB; peak "
            f"+{peak['rss'] - rss0:.1f} MB) — budget +64 MB: {'OK' if rss1 - rss0 <= 64 else 'OVER'}",
        ),
        (
            "soak: largest in-memory queue seen",
            f"{peak['queue']:,} items (4,096 call records, then up to "
            f"32,768 encoded); {compacted:,} logs encoded by the caller while the writer lagged; the caller "
            f"lent the GIL to the writer {lent:,} times (0.2 ms each)",
        ),
        (
            "soak: logs in the spool",
            f"{spooled:,} of {expected:,} ({'all' if spooled == expected else 'MISSING'}); "
            f"dropped {lost}; {status['data_bytes'] / 2**20:.1f} MB of logs, file {status['bytes'] / 2**20:.1f} MB",
        ),
    ]

    # ---- drain by the next exporter ---------------------------------------------------------
    collector = CollectorProcess(port)
    per_minute = args.drain_bulk_per_minute
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(per_minute if per_minute > 0 else 10**9)
    t0 = time.perf_counter()
    respan_instrument.instrument(api_key="bench", base_url=base)
    collector.wait_for(expected, timeout=3600)
    drain = time.perf_counter() - t0
    flushed = respan_instrument.flush(60)
    respan_instrument.uninstrument()
    limit = f"{per_minute:g} bulk/min" if per_minute > 0 else "unthrottled"
    results.append(
        (
            f"drain: spool → collector ({limit})",
            f"{expected:,} logs in {drain:.1f} s = {expected / drain:,.0f} logs/s; flush() {flushed}; "
            f"spool rows left {_spool.status(resolve_dir())['rows']}",
        )
    )
    collector.close()
    os.environ.pop("RESPAN_BULK_PER_MINUTE", None)

    # ---- 2. throughput to a collector in another process ------------------------------------
    collector = CollectorProcess()
    os.environ["RESPAN_SPOOL_DIR"] = os.path.join(spool_root, "throughput")
    n = args.throughput_calls
    cpu0 = time.process_time()
    for _ in range(n):
        call()
    bare_cpu = (time.process_time() - cpu0) / n * 1e6
    rows: dict[str, dict[str, float]] = {}
    for label, per_min in (("Respan's limit (30 bulk/min)", 30.0), ("unthrottled", 1e9)):
        os.environ["RESPAN_BULK_PER_MINUTE"] = str(per_min)
        clock = SpoolClock()
        collector.ask("reset")
        respan_instrument.instrument(api_key="bench", base_url=collector.url + "/api")
        for _ in range(200):
            call()
        assert respan_instrument.flush(60)
        collector.wait_for(200, 30)
        collector.ask("reset")
        clock.reset()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            call()
        calls_wall = time.perf_counter() - t0
        exporter = current_exporter()
        collector.wait_for(n - exporter.lost, timeout=600)
        total_wall = time.perf_counter() - t0
        assert respan_instrument.flush(60)
        cpu = (time.process_time() - cpu0) / n * 1e6
        lost, compacted, lent = exporter.lost, exporter._compacted, exporter._lent
        respan_instrument.uninstrument()
        clock.restore()
        rows[label] = {
            "calls_per_s": n / calls_wall,
            "logs_per_s": n / total_wall,
            "cpu": cpu,
            "lost": lost,
            "compacted": compacted,
            "lent": lent,
            **{k: v / n * 1e6 for k, v in clock.seconds.items()},
        }
    collector.close()

    print(
        f"openai {openai.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print()
    print("| what | result |")
    print("|---|---|")
    for what, value in results:
        print(f"| {what} | {value} |")
    print()
    print(f"Throughput: {n:,} calls from one thread, delivered to a collector in another process")
    print()
    print(
        "| bulk rate | calls/s made | logs/s delivered (end to end) | process CPU µs/call (bare "
        f"{bare_cpu:.0f}) | write-ahead µs/log: append + claim + delete | GIL lent / encoded by caller / "
        "dropped |"
    )
    print("|---|---|---|---|---|---|")
    for label, r in rows.items():
        wal = r["append"] + r["claim"] + r["delete"]
        print(
            f"| {label} | {r['calls_per_s']:,.0f} | {r['logs_per_s']:,.0f} | {r['cpu']:.0f} "
            f"({r['cpu'] / bare_cpu:.2f}×) | {wal:.1f} = {r['append']:.1f} + {r['claim']:.1f} + "
            f"{r['delete']:.1f} ({wal / r['cpu'] * 100:.1f}% of a call's CPU) "
            f"| {r['lent']:,.0f} / {r['compacted']:,.0f} / {r['lost']:,.0f} |"
        )


if __name__ == "__main__":
    main()
