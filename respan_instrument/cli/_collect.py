"""`respan-instrument collect`: a local Respan-compatible collector that prints each log it receives."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from types import FrameType
from typing import Any

from respan_instrument.local import Collector

from ._table import format_line

__all__ = ["run_collect"]


def run_collect(host: str, port: int, db: str, api_key: str | None) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 1 when the port or database cannot be opened."""
    print_lock = threading.Lock()
    received = 0

    def on_log(log: dict[str, Any]) -> None:
        nonlocal received
        with print_lock:
            received += 1
            print(format_line(log), flush=True)

    collector = Collector(host=host, port=port, db_path=db, api_key=api_key, on_log=on_log)
    try:
        collector.start()
    except OSError as exc:
        print(f"respan-instrument collect: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"respan-instrument collect: cannot open database {db}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        key_hint = api_key if api_key else "<any value>"
        with print_lock:
            print(
                "\n".join(
                    [
                        f"Respan-compatible collector listening on {collector.url}",
                        f"  export RESPAN_BASE_URL={collector.base_url}",
                        f"  export RESPAN_API_KEY={key_hint}",
                        f"Storing logs in {os.path.abspath(db)} "
                        f"(view them with: respan-instrument logs --db {db})",
                        "Press Ctrl-C to stop.",
                    ]
                ),
                flush=True,
            )
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        collector.stop()
    with print_lock:
        print(f"Collector stopped; {received} log(s) received.", flush=True)
    return 0
