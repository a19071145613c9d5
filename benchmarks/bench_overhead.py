"""Caller-thread overhead and total CPU: bare openai client vs instrumented, interleaved, one run.

    python benchmarks/bench_overhead.py [--rounds 7] [--calls 2000]

The instrumented runs export for real to a loopback Respan-compatible collector, so the
background worker competes for the GIL as it would in production.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time

from _common import CHAT_BODY, median, mock_client, stream_body, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    import openai

    import respan_instrument

    # the collector runs in its own process so its CPU is not counted as ours
    collector_proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom respan_instrument.local import Collector\n"
            "c = Collector(); c.start(); print(c.url, flush=True)\nsys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    collector_url = collector_proc.stdout.readline().strip()
    bodies = {
        "chat": (CHAT_BODY, "application/json"),
        "stream50": (stream_body(50), "text/event-stream"),
        "stream1000": (stream_body(1000), "text/event-stream"),
    }
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
    for kind, calls in (
        ("chat", args.calls),
        ("stream50", args.calls // 4),
        ("stream1000", max(20, args.calls // 40)),
    ):
        fn = workload(kind)
        timed(fn, calls // 5)  # warm-up
        rows: dict[str, list[float]] = {k: [] for k in ("bw", "iw", "bt", "it", "bp", "ip")}
        for r in range(args.rounds):
            for mode in ("bare", "ours") if r % 2 == 0 else ("ours", "bare"):  # order flips every round
                if mode == "bare":
                    cpu0 = time.process_time()
                    w, c = timed(fn, calls)
                    rows["bw"].append(w), rows["bt"].append(c)
                    rows["bp"].append((time.process_time() - cpu0) / calls * 1e6)
                    continue
                respan_instrument.instrument(api_key="bench", base_url=collector_url + "/api")
                timed(fn, 3)  # steady state: the exporter's threads, spool and HTTP client are up
                assert respan_instrument.flush(60)
                cpu0 = time.process_time()
                w, c = timed(fn, calls)
                assert respan_instrument.flush(60)
                rows["ip"].append((time.process_time() - cpu0) / calls * 1e6)  # incl. building + sending logs
                respan_instrument.uninstrument()
                rows["iw"].append(w), rows["it"].append(c)
        results[kind] = {k: median(v) for k, v in rows.items()}

    print(
        f"openai {openai.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{args.rounds} interleaved rounds"
    )
    print()
    print(
        "| workload | caller-thread CPU µs bare → ours | ratio | wall µs bare → ours | ratio "
        "| process CPU µs incl. export bare → ours | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        print(
            f"| {kind} | {r['bt']:.1f} → {r['it']:.1f} | {r['it'] / r['bt']:.3f}× "
            f"| {r['bw']:.1f} → {r['iw']:.1f} | {r['iw'] / r['bw']:.3f}× "
            f"| {r['bp']:.1f} → {r['ip']:.1f} | {r['ip'] / r['bp']:.3f}× |"
        )
    collector_proc.stdin.close()
    collector_proc.wait(5)


if __name__ == "__main__":
    main()
