"""ReplayStub: the package's OpenAI stub, answering with what a test queued instead of its own
answer, in order, per endpoint: an SDK-shaped answer a test built, or a recorded one (a JSON body,
or a stream's server-sent events as they were sent). Only tests replay, so it lives with them."""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from respan_instrument.local import OpenAIStub
from respan_instrument.local._stub_common import Reply

__all__ = ["ReplayStub"]


class _Replays:
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


class ReplayStub(OpenAIStub):
    """An `OpenAIStub` whose next POSTs to an endpoint can be answered by `replay`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._replays = _Replays()

    def replay(
        self, endpoint: str, body: Any = None, *, sse: str | bytes | None = None, status: int = 200
    ) -> None:
        """Answer the next POST to `endpoint` (``"responses"``, ``"chat/completions"``, ...) with
        `body` (JSON) or `sse` (a stream's server-sent events, as recorded) instead of the stub's
        own answer; answers queue in order."""
        self._replays.add(endpoint, body, sse=sse, status=status)

    def clear(self) -> None:
        """Forget recorded requests, and answers queued by `replay` and not served yet."""
        super().clear()
        self._replays.clear()

    def _scripted_answer(self, endpoint: str) -> Reply | None:
        return self._replays.take(endpoint)
