"""Where the background CPU of delivery goes, per log: cProfile inside the writer and sender threads.

Each background loop runs under its own cProfile.Profile (cProfile profiles only the thread that
enabled it), so caller-thread time is excluded. Also counts spool appends (transactions), bulk
POSTs and their batch sizes. Profiling inflates small functions; read the split, not the totals.

Run: PYTHONPATH=.:benchmarks python benchmarks/tools/profile_delivery.py [chat|stream50] [calls] [--clock]
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile
import time
from typing import Any

from common import CollectorProcess, clock_calls, mock_call


def main() -> None:
    argv = [a for a in sys.argv[1:] if not a.startswith("--")]
    workload = argv[0] if argv else "chat"
    n = int(argv[1]) if len(argv) > 1 else (2000 if workload == "chat" else 300)
    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-profile-")
    os.environ["RESPAN_BULK_PER_MINUTE"] = str(10**9)

    import respan_instrument
    from respan_instrument.deliver import posting as _courier
    from respan_instrument.deliver import sender as _sender
    from respan_instrument.deliver import spool as _spool
    from respan_instrument.deliver import writer as _writer
    from respan_instrument.record import encoders as _encoders

    profiles: dict[str, cProfile.Profile] = {}
    counts = {"append": 0, "appended": 0, "post": 0, "posted": 0}

    def profiled(name: str, loop: Any) -> Any:
        def run(self: Any) -> None:
            prof = profiles.setdefault(name, cProfile.Profile(time.thread_time))  # CPU, not idle waits
            prof.enable()
            try:
                loop(self)
            finally:
                prof.disable()

        return run

    clocks: dict[str, float] = {}

    def clocked(owner: Any, attr: str, label: str) -> None:
        clock_calls(owner, attr, label, clocks)

    if "--clock" in sys.argv:  # no profiler: thread CPU of a few coarse steps, cheap to measure
        from respan_instrument.record import payload

        clocked(_writer.Writer, "_drain", "writer pass (all)")
        clocked(_encoders.ItemEncoder, "encode", "  build + encode")
        clocked(payload, "settle", "    settle (parse kept bytes, replay stream, usage, price)")
        from respan_instrument.record import replay

        clocked(replay, "parsed_events", "      JSON parse of a stream's kept events")
        from respan_instrument.record import settle as _settle

        clocked(_settle, "_json_or", "      JSON parse of kept request and response bodies")
        clocked(_settle, "ids", "      trace ids")
        from respan_instrument.endpoints.base import Endpoint

        clocked(Endpoint, "outcome", "      usage and model of the response (outcome)")
        clocked(Endpoint, "price", "      cost (price)")
        clocked(payload, "build", "    build the log dict")
        clocked(_encoders, "encode_log", "    JSON encode (encode_log)")
        clocked(_writer.Writer, "_write", "  spool append (SQLite insert+commit)")
        clocked(_courier.Poster, "round", "sender round (all)")
        clocked(_spool.Spool, "claim", "  claim")
        clocked(_spool.Spool, "delete", "  delete")
        clocked(_courier.Poster, "_post", "  POST (httpx + collector answer wait)")
    else:
        _writer.Writer._run = profiled("writer", _writer.Writer._run)  # type: ignore[method-assign]
        _sender.Sender._run = profiled("sender", _sender.Sender._run)  # type: ignore[method-assign]
    append, post, claim = _spool.Spool.append, _courier.Poster._post, _spool.Spool.claim
    counts["claim"] = counts["empty claim"] = 0

    def counted_append(self: Any, url: str, batch: list[bytes]) -> Any:
        counts["append"] += 1
        counts["appended"] += len(batch)
        return append(self, url, batch)

    def counted_post(self: Any, rows: Any, stop: Any) -> float:
        counts["post"] += 1
        counts["posted"] += len(rows)
        return post(self, rows, stop)

    def counted_claim(self: Any, *a: Any, **k: Any) -> Any:
        rows = claim(self, *a, **k)
        counts["claim"] += 1
        counts["empty claim"] += not rows
        return rows

    _spool.Spool.append = counted_append  # type: ignore[method-assign]
    _courier.Poster._post = counted_post  # type: ignore[method-assign]
    _spool.Spool.claim = counted_claim  # type: ignore[method-assign]

    call = mock_call(workload)

    collector = CollectorProcess()
    respan_instrument.instrument(api_key="bench", base_url=collector.url + "/api")
    for _ in range(20):
        call()
    assert respan_instrument.flush(60)
    collector.wait_for(20, 30)
    collector.ask("reset")
    clocks.clear()
    for prof in profiles.values():
        prof.clear()  # bill the loop only, not start-up
    for key in counts:
        counts[key] = 0
    for _ in range(n):
        call()
    assert respan_instrument.flush(60)
    collector.wait_for(n, 120)
    respan_instrument.uninstrument()
    collector.close()

    print(
        f"{workload}: {n} calls; spool appends {counts['append']} (mean batch "
        f"{counts['appended'] / max(counts['append'], 1):.1f}); bulk POSTs {counts['post']} "
        f"(mean batch {counts['posted'] / max(counts['post'], 1):.1f}); claims {counts['claim']} "
        f"({counts['empty claim']} empty)"
    )
    for label, seconds in clocks.items():
        print(f"{label}: {seconds / n * 1e6:.1f} µs/log")
    for name, prof in profiles.items():
        stats = pstats.Stats(prof)
        total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
        print(f"\n## {name}: {total / n * 1e6:.1f} µs/log (thread CPU under the profiler)")
        stats.sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(
            int(os.environ.get("PROFILE_TOP", "25"))
        )


if __name__ == "__main__":
    main()
