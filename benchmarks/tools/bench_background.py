"""The background's CPU per log, without a caller competing for the GIL: writer pass, posts, checkpoint.

In the overhead scenario the background's work is interleaved with a busy caller, and what a
log costs there moves with the machine's load and with every GIL hand-over. Here the pipeline
is wired as `instrument()` wires it, but its threads are kept asleep while a round of calls
queues its records (mock transport); then this thread runs the writer's pass over them, posts
the rows it spooled from memory exactly as the sender does (to a loopback Collector in another
process), and checkpoints the spool. Thread CPU per log (user + system), the median of the
rounds after the first.

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/bench_background.py [chat|stream50] [rounds]
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from common import CollectorProcess, mock_call

CALLS = {"chat": 2000, "stream50": 300}


def _pipeline() -> Any:
    return next(o for o in gc.get_objects() if type(o).__name__ == "Pipeline" and not o._closed)


def main() -> None:
    workload = sys.argv[1] if len(sys.argv) > 1 else "chat"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-background-")
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(10**9)
    os.environ["RESPAN_SCHEDULE_DELAY"] = "1000"  # the writer's timer never fires during a round

    import respan_instrument
    from respan_instrument.deliver import pipeline

    pipeline.WAKE_AT = 10**9  # ... nor does a full queue wake it
    collector = CollectorProcess()
    call = mock_call(workload)

    respan_instrument.instrument(api_key="bench", base_url=collector.url + "/api")
    try:
        call()
        respan_instrument.flush(10)
        time.sleep(0.3)  # both threads back asleep
        wired = _pipeline()
        writer, sender = wired._writer, wired._sender
        sender.nudge = lambda: None  # the sender thread stays asleep: this thread posts
        stop = threading.Event()
        steps: dict[str, list[float]] = {"writer pass": [], "posts": [], "checkpoint": []}
        for index in range(rounds + 1):
            for _ in range(CALLS[workload]):
                call()
            queued = len(writer.queue)
            gc.collect()
            began = time.thread_time()
            writer._drain()
            written = time.thread_time()
            while sender.held:
                rows = sender._take_held(time.monotonic())
                if not rows:
                    break
                sender.poster.post_held(rows, stop)
            posted = time.thread_time()
            sender.spool.checkpoint()
            done = time.thread_time()
            if index:
                per_log = 1e6 / queued
                steps["writer pass"].append((written - began) * per_log)
                steps["posts"].append((posted - written) * per_log)
                steps["checkpoint"].append((done - posted) * per_log)
        medians = {step: statistics.median(values) for step, values in steps.items()}
        cells = ", ".join(f"{step} {value:.1f}" for step, value in medians.items())
        print(f"{workload}: µs of CPU per log: {cells}; all {sum(medians.values()):.1f}")
        print(f"delivered {sender.poster.delivered} logs over {rounds + 1} rounds and the warm-up")
    finally:
        respan_instrument.uninstrument()
        collector.close()


if __name__ == "__main__":
    main()
