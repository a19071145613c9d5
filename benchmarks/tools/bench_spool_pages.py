"""What the spool costs a log in CPU, by page size: insert, delete and checkpoint, as delivery does them.

A fresh spool file per page size; per round the writer's appends (two batches of 500, one
transaction each), the sender's deletes of the delivered rows (500 ids a statement) and the
WAL checkpoint the sender runs every second. Thread CPU (user + system: most of it is SQLite
writing pages into the WAL) per log, the median of the rounds. The first round is not counted
(the file and the page cache grow in it).

Run: PYTHONPATH=. python benchmarks/tools/bench_spool_pages.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

from respan_instrument.deliver import spool_place
from respan_instrument.deliver.spool import Spool

BATCH = 500
PAGE_SIZES = (4096, 16384, 65536)
BODIES = {"chat log (1 KB)": 1_000, "stream log (5 KB)": 5_000}


def _cost(page_size: int, body_size: int, rounds: int) -> dict[str, float]:
    spool_place.PAGE_SIZE = page_size
    spool = Spool(tempfile.mkdtemp(prefix="respan-pages-"), 1 << 30, spool_place.owner_token(), "key")
    spool.open()
    base = "http://127.0.0.1:1/api"
    body = b'{"custom_identifier":"' + b"x" * body_size + b'"}'
    steps: dict[str, list[float]] = {"insert": [], "delete": [], "checkpoint": []}
    for index in range(rounds + 1):
        ids: list[int] = []
        began = time.thread_time()
        for _ in range(2):
            last, _ = spool.append(base, [body] * BATCH)
            ids.extend(range(last - BATCH + 1, last + 1))
        inserted = time.thread_time()
        for start in range(0, len(ids), BATCH):
            spool.delete(ids[start : start + BATCH])
        deleted = time.thread_time()
        spool.checkpoint()
        done = time.thread_time()
        if index:
            per_log = 1e6 / len(ids)
            steps["insert"].append((inserted - began) * per_log)
            steps["delete"].append((deleted - inserted) * per_log)
            steps["checkpoint"].append((done - deleted) * per_log)
    spool.close()
    return {step: statistics.median(values) for step, values in steps.items()}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    kept = spool_place.PAGE_SIZE
    print("| log | page | insert µs/log | delete µs/log | checkpoint µs/log | all µs/log |")
    print("|---|---:|---:|---:|---:|---:|")
    try:
        for label, size in BODIES.items():
            for page_size in PAGE_SIZES:
                cost = _cost(page_size, size, rounds)
                cells = " | ".join(f"{cost[step]:.2f}" for step in ("insert", "delete", "checkpoint"))
                print(f"| {label} | {page_size} | {cells} | {sum(cost.values()):.2f} |")
    finally:
        spool_place.PAGE_SIZE = kept


if __name__ == "__main__":
    main()
