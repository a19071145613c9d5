"""Where the caller's extra time comes from when logs are delivered: the garbage collector, context
switches, or what runs on the other core. One phase of chat calls in this process, billed as
the overhead scenario bills it (to flush()), with gc callbacks and the main thread's context
switches counted, and the process and the loopback collector placed on CPUs as asked.

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/probe_placement.py {nokey|ours} [--place free|split|one]
  free:  nothing pinned; split: this process on CPU 0, the collector on CPU 1; one: both on CPU 0.
Compare "ours" with "nokey" under the same placement (Linux only).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from typing import Any

from common import CHAT_BODY, CollectorProcess, mock_client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("nokey", "ours"))
    parser.add_argument("--place", choices=("free", "split", "one"), default="free")
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-probe-")
    os.environ.setdefault("RESPAN_BULK_PER_MINUTE", str(10**9))  # unthrottled unless asked
    os.environ.pop("RESPAN_API_KEY", None)

    import respan_instrument

    collections: dict[tuple[int, str], list[float]] = {}
    started: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        thread = threading.current_thread().name
        if phase == "start":
            started[thread] = time.thread_time()
            return
        entry = collections.setdefault((info["generation"], thread), [0, 0.0])
        entry[0] += 1
        entry[1] += time.thread_time() - started.pop(thread, time.thread_time())

    collector = CollectorProcess()
    if args.place in ("split", "one"):  # before instrument(): its threads inherit the main thread's CPUs
        os.sched_setaffinity(0, {0})
        os.sched_setaffinity(collector.proc.pid, {1} if args.place == "split" else {0})
    client = mock_client(lambda request: (CHAT_BODY, "application/json"))
    msgs = [{"role": "user", "content": "Say hello"}]
    respan_instrument.instrument(
        api_key="probe" if args.mode == "ours" else None, base_url=collector.url + "/api"
    )
    for _ in range(300):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    respan_instrument.flush(30)
    gc.collect()
    gc.callbacks.append(on_gc)

    def switches() -> tuple[int, int]:
        path = f"/proc/self/task/{threading.get_native_id()}/status"
        fields = dict(line.split(":\t") for line in open(path).read().splitlines() if "ctxt" in line)
        return int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])

    n = args.calls
    s0, times0 = switches(), os.times()
    t0, p0 = time.thread_time(), time.process_time()
    for _ in range(n):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    respan_instrument.flush(60)
    caller, process = (time.thread_time() - t0) / n * 1e6, (time.process_time() - p0) / n * 1e6
    s1, times1 = switches(), os.times()
    gc.callbacks.remove(on_gc)
    respan_instrument.uninstrument()
    collector.close()
    print(
        f"{args.mode}, placement {args.place}: caller's thread {caller:.0f} µs a call, process {process:.0f} "
        f"(user {(times1.user - times0.user) / n * 1e6:.0f}, system {(times1.system - times0.system) / n * 1e6:.0f})"
    )
    print(
        f"  main thread context switches a call: voluntary {(s1[0] - s0[0]) / n:.2f}, "
        f"involuntary {(s1[1] - s0[1]) / n:.2f}"
    )
    for (generation, thread), (count, seconds) in sorted(collections.items()):
        print(f"  gc generation {generation} on {thread}: {count} collections, {seconds * 1e3:.1f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
