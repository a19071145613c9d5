"""Whole-process cost of instrumentation in a busy loop, delivery included.

The caller-thread cost alone hides the work moved to our background threads; a busy process
pays for that work all the same. So each instrumented phase is billed from the first call up to
the moment every log is spooled (`flush()`) and received by a loopback collector running in
another process (its CPU is not ours). Start-up (instrument(), warm-up calls, a flush) is not
billed. Phases run interleaved within each round so that drift of the machine hits them alike.

Run: PYTHONPATH=. python benchmarks/bench_process.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _common import CHAT_BODY, median, mock_client, stream_body
from bench_delivery import CollectorProcess

PHASES = ("bare", "ours", "ours+app TP", "ours no key")


class DropExporter:
    """A span exporter that keeps nothing: the app's own pipeline, minus its network."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def workloads() -> dict[str, Callable[[], None]]:
    chat_client = mock_client(lambda request: (CHAT_BODY, "application/json"))
    body = stream_body(50)
    stream_client = mock_client(lambda request: (body, "text/event-stream"))
    msgs = [{"role": "user", "content": "Say hello"}]

    def chat() -> None:
        chat_client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

    def stream50() -> None:
        for _ in stream_client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
        ):
            pass

    return {"chat": chat, "stream50": stream50}


def run_phase(
    phase: str, fn: Callable[[], None], n: int, collector: CollectorProcess, app_tp: Any
) -> tuple[float, float, float]:
    """(wall s, process CPU s, caller-thread CPU s) of n calls plus their delivery."""
    import respan_instrument

    respan_instrument.uninstrument()
    delivering = phase in ("ours", "ours+app TP")
    if phase != "bare":
        key = "bench" if delivering else None
        respan_instrument.instrument(
            api_key=key,
            base_url=collector.url + "/api",
            tracer_provider=app_tp if phase == "ours+app TP" else None,
        )
    for _ in range(20):
        fn()
    if phase != "bare":
        assert respan_instrument.flush(60)
    if delivering:
        collector.wait_for(20, 30)
    collector.ask("reset")
    gc.collect()
    w0, p0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(n):
        fn()
    if phase != "bare":
        assert respan_instrument.flush(60), "flush() did not report every log spooled"
    if delivering:
        collector.wait_for(n, 120)
    wall, proc, thread = time.perf_counter() - w0, time.process_time() - p0, time.thread_time() - t0
    return wall, proc, thread


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chat", type=int, default=2000)
    parser.add_argument("--stream", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="2 rounds, a quarter of the calls")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="this process (every thread) on CPU 0, the collector on CPU 1: the collector's "
        "work stays off the caller's core, and our threads share the caller's core",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.chat, args.stream = 2, args.chat // 4, args.stream // 4

    # The benchmark sets the environment for the package before it is imported (settings are read there).
    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-bench-process-")
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(10**9)  # measure our CPU, not Respan's rate limit
    os.environ.pop("RESPAN_API_KEY", None)
    os.environ.pop("RESPAN_BASE_URL", None)

    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import respan_instrument

    app_tp = TracerProvider()
    app_tp.add_span_processor(BatchSpanProcessor(DropExporter()))  # type: ignore[arg-type]
    collector = CollectorProcess()
    if args.pin:  # before instrument(): the threads it starts inherit the main thread's CPUs
        os.sched_setaffinity(0, {0})
        os.sched_setaffinity(collector.proc.pid, {1})
    calls = {"chat": args.chat, "stream50": args.stream}
    fns = workloads()
    # results[workload][phase] = list of (wall, proc, thread) per round
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        w: {p: [] for p in PHASES} for w in fns
    }
    for r in range(args.rounds):
        for w, fn in fns.items():
            for p in PHASES:
                results[w][p].append(run_phase(p, fn, calls[w], collector, app_tp))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    respan_instrument.uninstrument()
    collector.close()

    print(
        f"openai {openai.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {args.rounds} interleaved rounds; chat {args.chat}/phase, "
        f"stream50 {args.stream}/phase; medians of per-round values"
        + ("; pinned: this process on CPU 0, the collector on CPU 1" if args.pin else "")
    )
    print()
    print(
        "| workload | phase | wall ×bare | process CPU ×bare | caller CPU ×bare | extra wall µs/call "
        "| extra process CPU µs/call | extra caller CPU µs/call | background µs/log |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for w in fns:
        n = calls[w]
        bare = results[w]["bare"]
        b = [tuple(x / n * 1e6 for x in row) for row in bare]
        print(
            f"| {w} | bare | 1.00 | 1.00 | 1.00 | {median([x[0] for x in b]):.0f} µs | "
            f"{median([x[1] for x in b]):.0f} µs | {median([x[2] for x in b]):.0f} µs | "
            f"{median([x[1] - x[2] for x in b]):.1f} |"
        )
        for p in PHASES[1:]:
            o = [tuple(x / n * 1e6 for x in row) for row in results[w][p]]
            pairs = list(zip(o, b, strict=True))
            print(
                f"| {w} | {p} | {median([a[0] / c[0] for a, c in pairs]):.2f} | "
                f"{median([a[1] / c[1] for a, c in pairs]):.2f} | {median([a[2] / c[2] for a, c in pairs]):.2f} | "
                f"{median([a[0] - c[0] for a, c in pairs]):+.0f} | {median([a[1] - c[1] for a, c in pairs]):+.0f} | "
                f"{median([a[2] - c[2] for a, c in pairs]):+.0f} | "
                f"{median([(a[1] - a[2]) - (c[1] - c[2]) for a, c in pairs]):.0f} |"
            )


if __name__ == "__main__":
    main()
