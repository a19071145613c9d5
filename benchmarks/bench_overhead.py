"""Caller-thread overhead and total CPU: bare openai client vs instrumented, interleaved, one run.

    python benchmarks/bench_overhead.py [--rounds 7] [--calls 2000]

The instrumented runs export for real to a loopback Respan-compatible collector, so the
background worker competes for the GIL as it would in production.
"""

from __future__ import annotations

import argparse
import platform
import sys

from _common import CHAT_BODY, median, mock_client, stream_body, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    import openai

    import respan_instrument
    from respan_instrument.local import Collector

    collector = Collector(api_key=None)
    collector.start()
    bodies = {"chat": (CHAT_BODY, "application/json"), "stream50": (stream_body(50), "text/event-stream"),
              "stream1000": (stream_body(1000), "text/event-stream")}
    msgs = [{"role": "user", "content": "Say hello"}]

    def workload(kind: str):
        client = mock_client(lambda request: bodies[kind])
        if kind == "chat":
            return lambda: client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

        def consume() -> None:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True):
                pass
        return consume

    results = {}
    for kind, calls in (("chat", args.calls), ("stream50", args.calls // 4), ("stream1000", max(20, args.calls // 40))):
        fn = workload(kind)
        timed(fn, calls // 5)  # warm-up
        bare_w, bare_c, inst_w, inst_c = [], [], [], []
        for _ in range(args.rounds):
            w, c = timed(fn, calls)
            bare_w.append(w), bare_c.append(c)
            respan_instrument.instrument(api_key="bench", base_url=collector.url + "/api")
            w, c = timed(fn, calls)
            respan_instrument.flush(30)
            respan_instrument.uninstrument()
            inst_w.append(w), inst_c.append(c)
        results[kind] = (median(bare_w), median(inst_w), median(bare_c), median(inst_c))

    print(f"openai {openai.__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{args.rounds} interleaved rounds")
    print()
    print("| workload | bare µs/call | instrumented µs/call | ratio | bare CPU µs | instr. CPU µs (incl. export) | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    for kind, (bw, iw, bc, ic) in results.items():
        print(f"| {kind} | {bw:.1f} | {iw:.1f} | {iw / bw:.3f}× | {bc:.1f} | {ic:.1f} | {ic / bc:.3f}× |")
    print(f"\nlogs received by the collector: {len(collector.logs)}", file=sys.stderr)
    collector.stop()


if __name__ == "__main__":
    main()
