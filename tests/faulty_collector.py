"""FaultyCollector: the package's local collector with Respan's failure modes, for tests and
benchmarks (queued failing answers with their Retry-After, an outage switch, a delay before each
answer, dropped connections). The collector users run (`respan-instrument collect`, the demo) has
none of this; it lives with the tests, as ddtrace's test agent lives apart from ddtrace."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from respan_instrument.local.collector import Collector, CollectorRequest, _CollectorHandler

__all__ = ["FaultyCollector"]


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


class _FaultyHandler(_CollectorHandler):
    collector: FaultyCollector

    def _inject_fault(self) -> bool:
        faults = self.collector.faults
        delay = faults.delay
        if delay > 0:
            time.sleep(delay)
        if faults.take_drop():
            self.collector._record(CollectorRequest(self._path, self._hdrs, self._raw, 0))
            self.abort()
            return True
        failure = faults.take_failure()
        if failure is None:
            return False
        retry_after = failure.effective_retry_after()
        headers = {"Retry-After": format_retry_after(retry_after)} if retry_after is not None else None
        self._reply(failure.status, failure.payload(), headers)
        return True


class FaultyCollector(Collector):
    """A `Collector` whose request-log and OTLP endpoints fail on demand (`GET /api/health` never
    does): `fail_next`, `set_outage`, `set_delay`, `drop_connection_next`; `clear` cancels them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faults = FaultPlan()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        class Handler(_FaultyHandler):
            pass

        Handler.collector = self
        return Handler

    def clear(self) -> None:
        """Forget recorded logs and requests, and cancel every injected fault and delay."""
        super().clear()
        self.faults.reset()

    def fail_next(
        self, n: int = 1, status: int = 503, retry_after: float | None = None, body: Any = None
    ) -> None:
        """Answer the next ``n`` ingest requests with ``status`` (``body``: JSON value, str or bytes)."""
        self.faults.fail_next(Failure(status, retry_after, body), n)

    def set_outage(self, enabled: bool, status: int = 503, retry_after: float | None = None) -> None:
        """While enabled, every ingest request fails with ``status``."""
        self.faults.set_outage(Failure(status, retry_after) if enabled else None)

    def set_delay(self, seconds: float) -> None:
        """Sleep ``seconds`` before answering each ingest request (0 disables)."""
        self.faults.set_delay(seconds)

    def drop_connection_next(self, n: int = 1) -> None:
        """Close the connection without answering for the next ``n`` ingest requests."""
        self.faults.drop_next(n)
