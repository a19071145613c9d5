"""Our cost inside one instrumented process: rounds in several modes (instrumentation on,
suppressed, or with one part of it cut out), alternated in the same process.

The overhead scenario compares a bare process with an instrumented one. On a shared VM two
processes drift apart by more than the few per cent in question, and single rounds swing by
±30%. Here every mode runs in the same process, same heap, same warm caches, round after round
(their order flipped every round), so what differs between modes is only what the mode changes:
  on         calls recorded and delivered as deployed (a Collector in another process);
  off        the same calls inside OpenTelemetry's `suppress_instrumentation()`: our wrapper
             passes them through, nothing is queued, our threads sleep;
  lend=S     as `on`, with callers pausing S seconds (not `LEND_SECONDS`) to lend the GIL;
  unqueued   calls recorded, but their records dropped at once instead of queued: our
             caller-side path alone, our threads asleep;
  fixed      as `on`, but the writer spools and posts one fixed small log per call instead of
             building it (no parsing, settling, building or encoding of what the call kept);
  dropped    as `on`, but the writer drops each call's record: nothing built, spooled or posted.
Between them, `off` -> `unqueued` -> `dropped` -> `fixed` -> `on` splits our cost into
recording a call, queueing it (our threads awake), delivering a log, and building it.
Per mode: median over rounds of the caller's thread CPU, the process CPU up to the moment the
round's logs are delivered, the times the caller blocked (voluntary context switches) per 1,000
calls, and the caller's p99 latency; and each mode's median ratio to the first one.

Read on the 2-core VM of benchmarks/RESULTS.md (2026-12-08, chat, 16–24 rounds of 3,000 calls):
on against off, 1.006–1.026× caller CPU and 1.037–1.061× process CPU, which is what the
instruction counts say (1.013× and 1.063×); the overhead scenario read 1.07× and 1.11× for the
same code within the hour. Lending for 6 ms instead of 0.2 ms cut the caller's blocks from ~31
to ~10 per 1,000 calls and made no CPU better (+2.5% process, within the rounds' noise): the
caller's blocks are not where the benchmark's remaining gap lies.

Streams (2026-12-08, 12–16 rounds of 300 50-chunk streams; bare ~4.5 ms): on against off,
1.033–1.077× process CPU and 1.014–1.055× caller CPU. One run with every mode (caller µs /
process µs): off 4,462 / 4,477; unqueued 4,534 / 4,548; dropped 4,551 / 4,588; fixed 4,555 /
4,592; on 4,533 / 4,630. So recording a stream costs its caller ~70 µs, although callgrind counts
the caller's thread within 0.7% of a bare call's instructions (0–300 k of 43 M); our threads,
awake and freeing what was queued, ~40 µs more; building the logs ~40 µs (~106 µs in an
earlier run).

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/probe_inprocess.py [chat|streamN]
     [--modes on,off,lend=0.006,unqueued,dropped,fixed] [--calls 3000] [--rounds 12]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from common import CollectorProcess, mock_call


def caller_blocks() -> int:
    with open(f"/proc/self/task/{threading.get_native_id()}/status") as fh:
        for line in fh:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return 0


MODES = ("on", "off", "unqueued", "dropped", "fixed")  # and lend=SECONDS

# a request log as small as Respan takes: what `fixed` delivers for every call
FIXED_LOG = b'{"model":"gpt-4o-mini","log_type":"chat","prompt_tokens":1,"completion_tokens":1}'


@contextlib.contextmanager
def replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    """`owner.<name>` is `value` for the block, then what it was."""
    own = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, own)


@contextlib.contextmanager
def mode_of(name: str, pipeline_module: Any) -> Iterator[bool]:
    """Yields whether the round's calls make logs."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from respan_instrument import _setup
    from respan_instrument.capture import patch

    if name == "off":
        with suppress_instrumentation():
            yield False
    elif name == "unqueued":  # finished calls' records dropped instead of handed to the pipeline
        with replaced(patch._hooks, "sink", lambda record: None):
            yield False
    elif name in ("fixed", "dropped"):  # the writer turns each record into FIXED_LOG, or nothing
        writer = _setup._state.exporter._writer  # type: ignore[union-attr]
        encode = (lambda item: [FIXED_LOG]) if name == "fixed" else (lambda item: [])
        with replaced(writer, "_encode", encode):
            yield name == "fixed"
    elif name.startswith("lend="):
        with replaced(pipeline_module, "LEND_SECONDS", float(name[5:])):
            yield True
    else:  # "on"
        yield True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", nargs="?", default="chat", help="chat, or streamN (N chunks)")
    parser.add_argument("--modes", default="on,off")
    parser.add_argument("--calls", type=int)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    n = args.calls or (3000 if args.workload == "chat" else 300)
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES and not m.startswith("lend=")]
    if unknown:
        parser.error(f"unknown modes {unknown}: {', '.join(MODES)} or lend=SECONDS")
    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-probe-")
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(10**9)  # our CPU, not Respan's rate limit

    import respan_instrument
    from respan_instrument.deliver import pipeline

    call = mock_call(args.workload)
    collector = CollectorProcess()
    respan_instrument.instrument(api_key="bench", base_url=collector.url + "/api")
    for _ in range(n):  # warm-up: imports, price tables, the threads' malloc arenas
        call()
    assert respan_instrument.flush(60)
    results: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in modes}
    clock = time.perf_counter
    for r in range(args.rounds):
        for name in modes if r % 2 == 0 else modes[::-1]:
            collector.ask("reset")
            latencies = []
            blocks = caller_blocks()
            c0, p0 = time.thread_time(), time.process_time()
            with mode_of(name, pipeline) as logged:
                for _ in range(n):
                    t = clock()
                    call()
                    latencies.append(clock() - t)
            caller = time.thread_time() - c0
            assert respan_instrument.flush(60)
            collector.wait_for(n if logged else 0, 120)
            process = time.process_time() - p0
            latencies.sort()
            blocked = caller_blocks() - blocks
            results[name].append((caller / n, process / n, blocked / n, latencies[int(n * 0.99)]))
    respan_instrument.uninstrument()
    collector.close()

    base = modes[0]
    print(f"{args.workload}: {args.rounds} rounds of {n} calls, medians over rounds")
    print(
        f"{'mode':>14} {'caller µs':>10} {'process µs':>11} {'blocks/1000':>12} {'p99 ms':>7}  ratio to {base}"
    )
    for name, rows in results.items():
        med = [statistics.median(row[i] for row in rows) for i in range(4)]
        ratios = [
            statistics.median(row[i] / b[i] for row, b in zip(rows, results[base], strict=True))
            for i in (0, 1)
        ]
        print(
            f"{name:>14} {med[0] * 1e6:>10.0f} {med[1] * 1e6:>11.0f} {med[2] * 1000:>12.1f} {med[3] * 1e3:>7.2f}"
            f"  caller {ratios[0]:.3f}×, process {ratios[1]:.3f}×"
        )


if __name__ == "__main__":
    main()
