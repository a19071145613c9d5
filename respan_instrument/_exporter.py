"""The background worker: a bounded queue from callers, payloads built and delivered off-thread."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any, Callable, Mapping

from opentelemetry import context as otel_context

from ._errors import contained, log_once, logger, report
from ._payload import encode_log, join
from ._transport import BULK_PATH, CREATE_PATH, Reply, RetryPolicy, Sender

MAX_BATCH = 500
MAX_QUEUE = 20_000
SCHEDULE_DELAY = 0.5  # seconds a lone log may wait for companions
BULK_PER_MINUTE = 30


class _Marker:
    """A flush request travelling through the queue behind every log submitted before it."""

    __slots__ = ("done", "lost_before")

    def __init__(self, lost_before: int) -> None:
        self.done = threading.Event()
        self.lost_before = lost_before


class _Bucket:
    """Token bucket for Respan's bulk rate limit (per organisation; we keep well under it)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(1, per_minute // 6))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def wait_time(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class Exporter:
    """Turns finished calls into request logs and posts them to Respan.

    `submit()` is the only method on the caller's hot path: an append to a bounded deque.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        build: Callable[[Any], dict[str, Any]],
        *,
        max_content_bytes: int = 1_000_000,
        max_queue: int = MAX_QUEUE,
        schedule_delay: float = SCHEDULE_DELAY,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._build = build
        self._max_content = max_content_bytes
        self._max_queue = max_queue
        self._delay = schedule_delay
        self._policy = policy or RetryPolicy()
        self._lost = 0
        self._dropped_full = 0
        self._stop = threading.Event()
        self._bucket = _Bucket(BULK_PER_MINUTE)
        self._sender = Sender(base_url, api_key)
        self._start()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # ---- caller side -------------------------------------------------------------------
    def submit(self, item: Any) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._dropped_full += 1
            log_once("queue-full", "respan_instrument: log queue full; dropping logs (counted)")
            return
        queue.append(item)
        if len(queue) >= MAX_BATCH:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted so far is delivered (True) or `timeout` passes."""
        if not self._thread.is_alive():
            return not self._queue
        marker = _Marker(self._lost)
        self._queue.append(marker)
        self._wake.set()
        if not marker.done.wait(timeout):
            return False
        return self._lost == marker.lost_before

    def shutdown(self, timeout: float = 5.0) -> bool:
        ok = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=1.0)
        return ok

    @property
    def lost(self) -> int:
        return self._lost + self._dropped_full

    # ---- worker side -------------------------------------------------------------------
    def _start(self) -> None:
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="respan-exporter", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        # the parent's thread, queue and connections do not exist here; the child starts its own
        self._stop = threading.Event()
        self._sender = Sender(self._base_url, self._api_key)
        self._start()

    def _run(self) -> None:
        # our own HTTP requests must not be traced by an httpx instrumentation
        key = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")
        otel_context.attach(otel_context.set_value(key, True))
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            try:
                self._drain()
            except Exception as exc:  # never let the worker die
                report("the export worker", exc)
            if self._stop.is_set() and not self._queue:
                break
        self._sender.close()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[bytes] = []
            markers: list[_Marker] = []
            while queue and len(batch) < MAX_BATCH:
                item = queue.popleft()
                if isinstance(item, _Marker):
                    markers.append(item)
                    break
                with contained("building a request log"):
                    log = item if isinstance(item, dict) else self._build(item)
                    batch.append(encode_log(log, self._max_content))
            if batch:
                self._deliver(batch)
            for marker in markers:
                marker.done.set()

    def _deliver(self, logs: list[bytes]) -> None:
        bulk = len(logs) > 1
        path = BULK_PATH if bulk else CREATE_PATH
        body = join(logs)
        for attempt in range(self._policy.max_attempts):
            if bulk:
                wait = self._bucket.wait_time()
                if wait and self._stop.wait(wait):
                    pass
                self._bucket.take()
            reply = self._sender.post(path, body)
            if reply.ok:
                if bulk:
                    self._row_errors(reply, logs)
                return
            if reply.status in (401, 403):
                log_once(
                    "bad-key",
                    "respan_instrument: Respan refused the API key (HTTP %s). Check RESPAN_API_KEY "
                    "(or instrument(api_key=...)); calls carry on, logs are not delivered meanwhile.",
                    reply.status,
                    level=logging.ERROR,
                )
                break
            if not self._policy.retryable(reply):
                log_once(
                    f"rejected:{reply.status}",
                    "respan_instrument: Respan rejected %d log(s) with HTTP %s: %s",
                    len(logs),
                    reply.status,
                    reply.body[:300].decode(errors="replace"),
                )
                break
            if attempt + 1 < self._policy.max_attempts:
                if self._stop.wait(self._policy.delay(attempt, reply)):
                    break
        else:
            logger.warning(
                "respan_instrument: could not deliver %d log(s) to Respan (%s)",
                len(logs),
                reply.error or f"HTTP {reply.status}",
            )
        self._lost += len(logs)

    def _row_errors(self, reply: Reply, logs: list[bytes]) -> None:
        data = reply.json()
        if not isinstance(data, Mapping) or not data.get("error_count"):
            return
        errors = data.get("errors") or []
        self._lost += int(data.get("error_count") or 0)
        for error in errors[:5]:
            reason = error.get("error") if isinstance(error, Mapping) else error
            log_once(
                f"row:{reason}",
                "respan_instrument: Respan rejected a log row: %s",
                str(reason)[:300],
            )
