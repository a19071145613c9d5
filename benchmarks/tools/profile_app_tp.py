"""Where a chat call's time goes on the caller's thread when the application has its own
TracerProvider: ours against the bare client, with the app's spans going to a
SimpleSpanProcessor or to a BatchSpanProcessor (both with an exporter that keeps nothing), and
the steps of ours clocked in place.

Nothing is delivered (no key): this is the caller's thread alone, the part of the "ours + app's
TracerProvider" rows of the overhead scenario that the span path adds. Phases run in one process,
interleaved, 5 rounds; medians.

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/profile_app_tp.py [--calls 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from common import CHAT_BODY, DropExporter, clock_calls, mock_client

PHASES = ("bare", "ours, no TracerProvider", "ours + app TP (simple)", "ours + app TP (batch)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-profile-tp-")
    os.environ.pop("RESPAN_API_KEY", None)

    import logging

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    import respan_instrument
    from respan_instrument.capture import call as capture_call
    from respan_instrument.capture import span as capture_span

    logging.getLogger("respan_instrument").setLevel(logging.ERROR)
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)  # "Queue full, dropping Span."
    simple, batch = TracerProvider(), TracerProvider()
    simple.add_span_processor(SimpleSpanProcessor(DropExporter()))  # type: ignore[arg-type]
    batch.add_span_processor(BatchSpanProcessor(DropExporter()))  # type: ignore[arg-type]
    providers = {PHASES[2]: simple, PHASES[3]: batch}
    client = mock_client(lambda request: (CHAT_BODY, "application/json"))
    msgs = [{"role": "user", "content": "Say hello"}]

    def chat() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

    clocks: dict[str, float] = {}
    steps = [
        (capture_span, "start", "span start (OpenTelemetry SDK, request attributes)"),
        (capture_span, "end_ok", "span end (OpenTelemetry SDK, response attributes)"),
        (capture_call.Call, "_measure", "usage, cost, metrics and content attributes"),
        (capture_call.Call, "_content", "  of which content attributes"),
        (capture_call.Call, "_hand_over", "hand-over to the worker"),
    ]

    def phase(name: str, n: int) -> float:
        respan_instrument.uninstrument()
        if name != "bare":
            respan_instrument.instrument(api_key=None, tracer_provider=providers.get(name))
        for _ in range(200):
            chat()
        t0 = time.thread_time()
        for _ in range(n):
            chat()
        return (time.thread_time() - t0) / n * 1e6

    results: dict[str, list[float]] = {p: [] for p in PHASES}
    for r in range(args.rounds):
        order = PHASES if r % 2 == 0 else tuple(reversed(PHASES))
        for p in order:
            results[p].append(phase(p, args.calls))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    for owner, name, label in steps:
        clock_calls(owner, name, label, clocks)
    clocked_calls = args.calls
    phase(PHASES[2], clocked_calls)
    respan_instrument.uninstrument()

    bare = statistics.median(results["bare"])
    print(f"caller-thread CPU per chat call, median of {args.rounds} rounds of {args.calls} calls")
    print()
    print("| phase | µs/call | ×bare | extra µs |")
    print("|---|---|---|---|")
    for p in PHASES:
        v = statistics.median(results[p])
        print(f"| {p} | {v:.0f} | {v / bare:.2f} | {v - bare:+.0f} |")
    print()
    print("steps of ours with the app's TracerProvider (simple), µs per call, clocked in place (a")
    print("clock adds ~0.5 µs to each step):")
    print()
    for _, _, label in steps:
        print(f"- {label}: {clocks.get(label, 0.0) / clocked_calls * 1e6:.1f}")


if __name__ == "__main__":
    main()
