"""What a background thread costs a busy caller beyond its own CPU: the caller's idle moments.

A loop of chat calls (mock transport, no instrumentation) runs in turn with, every `--every`
calls:
  none     nothing else;
  process  another process busy for `--ms` on the other core (shares no GIL, no memory);
  thread   a thread of this process busy in Python for `--ms` (takes the GIL from the caller);
  sleep    the caller itself sleeping `--sleep` ms (its core idles; nothing else runs).
Printed: the caller's thread CPU per call, and its extra over `none`.

On the 2-core VM of benchmarks/RESULTS.md (2026-12-07, quiet), with 10 ms every 300 calls,
`process` cost the caller nothing and `thread` +19-40 µs a call; sleeping 0.2 ms every 30 calls
cost +5-20 µs a call, 1 ms +28 µs, 20 ms +100 µs. Later the same day, with the bare loop itself
moving by ±30 µs between repeats, the modes could not be told apart: read it on a quiet machine,
with several repeats. What it suggests, and what the per-call breakdown of an instrumented loop
showed too (calls during one of our threads' turns ran +160 µs, the ~20 calls after it +100 µs):
a caller's core that idles (blocked on the GIL while our thread runs, or pausing to lend it)
runs the following calls slower, whatever our thread did, so the cost of delivery is the number
of times it takes the GIL from a busy caller as much as its CPU.

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/probe_blocks.py [--every 300] [--ms 10] [--sleep 0.2]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from common import CHAT_BODY, mock_client


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        for i in range(100):
            total += i


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=300)
    parser.add_argument("--ms", type=float, default=10.0)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    client = mock_client(lambda request: (CHAT_BODY, "application/json"))
    msgs = [{"role": "user", "content": "Say hello"}]
    read, write = os.pipe()

    if os.fork() == 0:  # the other process: busy for --ms whenever told, until the pipe closes
        os.close(write)
        while os.read(read, 1):
            _busy(args.ms / 1000)
        os._exit(0)
    os.close(read)
    in_thread = threading.Event()

    def thread_loop() -> None:
        while True:
            in_thread.wait()
            in_thread.clear()
            _busy(args.ms / 1000)

    threading.Thread(target=thread_loop, daemon=True).start()

    def phase(mode: str) -> float:
        t0 = time.thread_time()
        for i in range(args.calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
            if i % args.every == args.every - 1:
                if mode == "process":
                    os.write(write, b"x")
                elif mode == "thread":
                    in_thread.set()
                elif mode == "sleep":
                    time.sleep(args.sleep / 1000)
        return (time.thread_time() - t0) / args.calls * 1e6

    for _ in range(300):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    modes = ("none", "process", "thread", "sleep")
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:
            results[mode].append(phase(mode))
    os.close(write)
    base = min(results["none"])
    print(
        f"every {args.every} calls: busy {args.ms} ms / sleep {args.sleep} ms; caller's thread CPU per call"
    )
    for mode in modes:
        best = min(results[mode])
        print(f"  {mode:8} {best:6.0f} µs  ({best - base:+.0f})   all: {[round(v) for v in results[mode]]}")


if __name__ == "__main__":
    main()
