"""Thread-safe, programmable failure injection for the local collector."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["Failure", "FaultPlan", "format_retry_after"]


@dataclass(frozen=True)
class Failure:
    """One injected failing answer."""

    status: int
    retry_after: float | None = None
    body: Any = None

    def payload(self) -> Any:
        """Body to send: the configured one, or a DRF-style ``{"detail": ...}`` object."""
        if self.body is not None:
            return self.body
        if self.status == 429:
            return {"detail": "Request was throttled.", "retry_after": self.effective_retry_after()}
        return {"detail": f"Injected failure (HTTP {self.status})."}

    def effective_retry_after(self) -> float | None:
        """Retry-After seconds to advertise (429 always advertises one, 0 by default)."""
        if self.retry_after is None and self.status == 429:
            return 0
        return self.retry_after


def format_retry_after(seconds: float) -> str:
    """Header value for ``Retry-After`` (integer seconds when whole, else a decimal)."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


class FaultPlan:
    """Queued failures, outage switch, per-request delay and connection drops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Failure] = deque()
        self._outage: Failure | None = None
        self._delay = 0.0
        self._drops = 0

    def fail_next(self, failure: Failure, count: int) -> None:
        with self._lock:
            self._queue.extend([failure] * max(0, count))

    def set_outage(self, failure: Failure | None) -> None:
        with self._lock:
            self._outage = failure

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = max(0.0, float(seconds))

    def drop_next(self, count: int) -> None:
        with self._lock:
            self._drops += max(0, count)

    @property
    def delay(self) -> float:
        with self._lock:
            return self._delay

    def take_drop(self) -> bool:
        """Consume one pending connection drop, if any."""
        with self._lock:
            if self._drops <= 0:
                return False
            self._drops -= 1
            return True

    def take_failure(self) -> Failure | None:
        """The outage failure if on, else the next queued failure (consumed), else None."""
        with self._lock:
            if self._outage is not None:
                return self._outage
            return self._queue.popleft() if self._queue else None

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._outage = None
            self._delay = 0.0
            self._drops = 0
