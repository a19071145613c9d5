"""Answers the stub serves instead of its own, in order, per endpoint: an SDK-shaped answer a test
built, or a recorded one (a JSON body, or a stream's server-sent events as they were sent)."""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from ._stub_common import Reply


class Replays:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, deque[Reply]] = {}

    def add(
        self, endpoint: str, body: Any = None, *, sse: str | bytes | None = None, status: int = 200
    ) -> None:
        if sse is not None:
            raw = sse.encode() if isinstance(sse, str) else sse
            reply = Reply(raw=raw, content_type="text/event-stream; charset=utf-8", status=status)
        else:
            reply = Reply(raw=json.dumps(body).encode(), status=status)
        with self._lock:
            self._queued.setdefault(endpoint, deque()).append(reply)

    def take(self, endpoint: str) -> Reply | None:
        with self._lock:
            queued = self._queued.get(endpoint)
            return queued.popleft() if queued else None

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
