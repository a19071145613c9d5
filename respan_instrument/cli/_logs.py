"""`respan-instrument logs`: print request logs stored by `respan-instrument collect` (SQLite)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

from ._table import render_table, render_totals

__all__ = ["read_logs", "run_logs"]


def _rows(db: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(received_at, log) newest first, from the collector's ``logs(id, received_at, json)`` table."""
    conn = sqlite3.connect(db, timeout=5.0)
    try:
        cursor = conn.execute("SELECT received_at, json FROM logs ORDER BY rowid DESC")
        for received_at, data in cursor:
            try:
                log = json.loads(data)
            except ValueError:
                continue
            if isinstance(log, dict):
                yield str(received_at), log
    finally:
        conn.close()


def _matches(log: dict[str, Any], customer: str | None, model: str | None) -> bool:
    if customer is not None and str(log.get("customer_identifier")) != customer:
        return False
    return model is None or str(log.get("model") or "").startswith(model)


def read_logs(
    db: str, customer: str | None = None, model: str | None = None, limit: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """Matching (received_at, log) pairs, oldest first; the newest ``limit`` of them when ``limit`` > 0."""
    picked: list[tuple[str, dict[str, Any]]] = []
    for received_at, log in _rows(db):
        if _matches(log, customer, model):
            picked.append((received_at, log))
            if 0 < limit <= len(picked):
                break
    picked.reverse()
    return picked


def run_logs(db: str, customer: str | None, model: str | None, limit: int) -> int:
    """Print the stored logs as a table (newest last) with per-customer totals."""
    if not os.path.isfile(db):
        print(
            f"respan-instrument logs: no database at {db} (start `respan-instrument collect` first)",
            file=sys.stderr,
        )
        return 1
    try:
        rows = read_logs(db, customer, model, limit)
    except sqlite3.Error as exc:
        print(f"respan-instrument logs: cannot read {db}: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("No matching logs.")
        return 0
    logs = [log for _, log in rows]
    print(render_table(logs, received=[stamp for stamp, _ in rows]))
    print()
    print(render_totals(logs))
    return 0
