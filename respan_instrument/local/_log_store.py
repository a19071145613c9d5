"""SQLite persistence of accepted request logs for the local collector."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

__all__ = ["LogStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS logs (id TEXT PRIMARY KEY, received_at TEXT NOT NULL, json TEXT NOT NULL)"
)


class LogStore:
    """One shared sqlite connection (WAL mode) guarded by a lock; table ``logs(id, received_at, json)``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(os.fspath(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)

    def insert(self, log_id: str, received_at: str, log: dict[str, Any]) -> None:
        """Store one accepted log."""
        data = json.dumps(log, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            self._conn.execute(
                "INSERT INTO logs (id, received_at, json) VALUES (?, ?, ?)", (log_id, received_at, data)
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
