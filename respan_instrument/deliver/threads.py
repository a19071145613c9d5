"""The pipeline's two background threads: the writer (queue -> spool) and the sender (spool -> destination).

Kept apart from `Pipeline`'s caller side (submit, flush, shutdown) so each reads on its own; the
state they share is declared here, per process (`Pipeline._start()` sets it afresh after a fork).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from .._errors import background_thread_begins, report
from .courier import Courier, _DropReport
from .destination import Destination
from .spool import Spool
from .turns import _Turn

IDLE_POLL = 10.0  # seconds between looks for rows freed by other processes
CHILDREN_POLL = 1.0  # ... while this process has multiprocessing children, which free rows as they end
UNWRITTEN_MAX_BYTES = 16 * 1024 * 1024  # logs held while the spool refuses writes


def _suppress_our_tracing() -> None:
    """Our own HTTP requests must not be traced by an httpx instrumentation."""
    key = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")
    otel_context.attach(otel_context.set_value(key, True))


def _has_children() -> bool:
    """Does this process have `multiprocessing` children (started, not yet joined)? A pool's
    workers hand their rows over as they end, for this process to deliver: with children, the
    idle sender looks for them every `CHILDREN_POLL` s, not every `IDLE_POLL`."""
    process = sys.modules.get("multiprocessing.process")
    return bool(getattr(process, "_children", None))


class _Marker:
    """A flush request travelling through the queue behind every log submitted before it."""

    __slots__ = ("done", "upto", "safe", "written", "others_upto", "deadline", "tries_at")

    def __init__(self, deadline: float | None = None) -> None:
        # monotonic: when the flush that sent it gives up; None for `persist()`, which waits
        # for the spool only and must not bring a backed-off try forward
        self.deadline = deadline
        self.tries_at = -1  # the courier's tries when the sender first saw it (-1: not yet)
        self.done = threading.Event()
        self.upto = 0  # our last spool row written before the marker
        self.safe = True  # False when logs before it could not be written to the spool
        self.written = threading.Event()  # the writer got to it: logs before it are in the spool
        self.others_upto = -1  # rows of other processes up to this id are waited for too (-1: not looked yet)


def _wants_try(marker: _Marker, courier: Courier) -> bool:
    """Does this flush still wait for a try of the destination (see `_resolve_markers`)?"""
    return (
        marker.deadline is not None
        and marker.tries_at == courier.tries
        and courier.asked_until <= marker.deadline
    )


class _Threads:
    """The writer's and the sender's loops, over the state `Pipeline` holds."""

    # set by Pipeline.__init__
    _route: str
    _encode: Callable[[Any], list[bytes]]
    _delay: float
    _hard_queue: int
    _overflow: int
    # per process: Pipeline._start() sets these afresh after a fork
    _destination: Destination
    _unbuilt: int
    _retry_at: float
    _wturn: _Turn
    _sturn: _Turn
    _queue: collections.deque[Any]
    _owner: str
    _markers: collections.deque[_Marker]
    _wake: threading.Event
    _kick: threading.Event
    _stop: threading.Event
    _ready: threading.Event
    _stopping: bool
    _last_id: int
    _unwritten: list[bytes]
    _trimmed: int
    _unwritable: int
    _overflow_seen: int
    _drops_seen: int
    _fork_locks: list[threading.Lock]
    _overflow_report: _DropReport
    _trim_report: _DropReport
    _unwritable_report: _DropReport
    _spool: Spool  # the sender's handle (and the one flush questions go to)
    _wspool: Spool  # the writer's handle: its own connection, no checkpoints
    _checkpointed: float
    _housekept: float  # when the idle sender last reaped and compacted the spool
    _courier: Courier
    _writer: threading.Thread
    _sending: threading.Thread

    def _write_loop(self) -> None:
        background_thread_begins()
        try:
            self._spool.open()
            self._wspool.open(checkpoints=False)
        except Exception as exc:  # noqa: BLE001 - reported; the sender still starts
            report("opening the spool", exc)
        finally:
            self._ready.set()
        turn = self._wturn
        while True:
            turn.sleeping(self._delay)
            self._wake.wait(self._delay)
            turn.awake()
            self._wake.clear()
            try:
                self._drain()
            except Exception as exc:  # noqa: BLE001 - never let the writer die
                report("the spool writer", exc)
            if self._stopping and not self._queue:
                break
        turn.gone()

    def _drain(self) -> None:
        """Spool what was queued when the pass began, and no more.

        Items that callers add meanwhile wait for the next pass. Chasing them instead kept the
        writer awake for as long as callers were busy, one tiny transaction and one GIL handoff
        per call, each paid on the caller's thread (benchmarks/bench_process.py shows it).
        """
        queue = self._queue
        if self._unwritten:
            self._write([])
        todo = len(queue)
        max_batch, max_bytes = self._destination.max_batch, self._destination.max_batch_bytes
        while todo > 0:
            bodies: list[bytes] = []
            size = 0
            marker = None
            while todo > 0 and len(bodies) < max_batch and size < max_bytes:
                todo -= 1
                item = queue.popleft()
                if isinstance(item, _Marker):
                    marker = item
                    break
                if isinstance(item, bytes):  # encoded by the caller (see _compact)
                    bodies.append(item)
                    size += len(item)
                    continue
                try:
                    encoded = self._encode(item)
                except Exception as exc:  # noqa: BLE001 - one bad record must not cost the others
                    report("building a request log", exc)
                    self._unbuilt += 1
                    continue
                bodies.extend(encoded)
                size += sum(map(len, encoded))
            if bodies:
                self._write(bodies)
            if marker is not None:
                marker.upto = self._last_id
                marker.safe = not self._unwritten
                marker.written.set()
                self._markers.append(marker)
                self._sturn.wake()
        overflow = self._overflow
        if overflow != self._overflow_seen:
            self._overflow_report.add(overflow - self._overflow_seen, self._hard_queue)
            self._overflow_seen = overflow

    def _write(self, bodies: list[bytes]) -> None:
        batch = self._unwritten + bodies if self._unwritten else bodies
        try:
            last, trimmed = self._wspool.append(self._route, batch)
        except Exception as exc:  # noqa: BLE001 - disk full, locked too long: keep (bounded), retry
            report("writing to the spool", exc)
            self._unwritten = batch
            total = sum(len(body) for body in batch)
            while self._unwritten and total > UNWRITTEN_MAX_BYTES:
                total -= len(self._unwritten.pop(0))
                self._unwritable += 1
                self._unwritable_report.add(1, self._wspool.place, UNWRITTEN_MAX_BYTES >> 20)
            return
        self._wturn.awake()
        self._unwritten = []
        self._last_id = last
        if trimmed:
            self._trimmed += trimmed
            self._trim_report.add(trimmed, self._wspool.place, self._wspool.max_bytes >> 20)
        if time.monotonic() >= self._retry_at:  # backing off, the sender would only sleep again
            self._sturn.wake()

    def _send_loop(self) -> None:
        background_thread_begins()
        _suppress_our_tracing()
        self._ready.wait()
        courier = self._courier
        try:
            courier.start()
        except Exception as exc:  # noqa: BLE001 - reported; delivery goes on
            report("reading the spool", exc)
        self._retry_at = next_try = 0.0
        self._housekept = time.monotonic()
        turn = self._sturn
        while not self._stopping:
            try:
                turn.awake()
                now = time.monotonic()
                if now - self._checkpointed >= 1.0:  # keep the WAL short; its fsync lands here
                    self._checkpointed = now
                    self._spool.checkpoint()
                if now < next_try:
                    self._resolve_markers()
                    next_try = self._retry_at = self._flush_cuts_short(now, next_try)
                if now < next_try:
                    turn.sleeping(next_try - now)
                    self._kick.wait(next_try - now)
                    self._kick.clear()
                    continue
                written = self._last_id
                wait = courier.round(self._stop)
                self._resolve_markers()
                if wait == 0.0 and self._drained(written):
                    wait = None
                if wait is None:  # nothing to send: sleep until the writer has more
                    poll = CHILDREN_POLL if _has_children() else IDLE_POLL
                    turn.sleeping(poll)
                    if not self._kick.wait(poll) and time.monotonic() - self._housekept >= IDLE_POLL:
                        self._housekept = time.monotonic()  # quiet for a while: housekeeping
                        self._spool.reap()
                        self._spool.compact()
                    self._kick.clear()
                else:
                    self._retry_at = next_try = time.monotonic() + wait
            except Exception as exc:  # noqa: BLE001 - never let the sender die
                report("the sender", exc)
                turn.sleeping(1.0)
                self._stop.wait(1.0)
        turn.gone()

    def _drained(self, written: int) -> bool:
        """After a batch went through: would claiming again now find nothing?

        Yes when it took all there was to claim and reached past every row the writer had
        written before it (a claim takes the oldest claimable rows first), and no flush waits
        (a flush also waits for rows other processes left behind). Rows written since then
        come with a kick, which ends the sleep at once; the claim that would find nothing,
        once per writer pass, is skipped.
        """
        courier = self._courier
        return courier.accepting and 0 < written <= courier.claimed_upto and not self._markers

    def _flush_cuts_short(self, now: float, next_try: float) -> float:
        """When the sender backs off and a flush waits for an attempt (see `_resolve_markers`):
        the next try, brought forward to now, or to when the destination asked us to come back
        if that is before the flush gives up; never ahead of the rate limit."""
        courier = self._courier
        for marker in self._markers:
            if _wants_try(marker, courier):
                return min(next_try, max(now + courier.bucket.wait_time(), courier.asked_until))
        return next_try

    def _resolve_markers(self) -> None:
        """Settle the flushes whose logs were all accepted or, while the destination does not
        accept, are in the spool. "Does not accept" is a fresh answer: a round after the flush
        came (a post, or a claim that found nothing to post), since the last answer may be
        from before an outage ended and the backoff still far off; only a destination that
        asked for a wait past the flush's deadline (Retry-After) is taken at its word."""
        markers = self._markers
        courier = self._courier
        in_memory = self._spool.in_memory
        while markers:
            marker = markers[0]
            if marker.tries_at < 0:
                marker.others_upto = self._others_upto()
                marker.tries_at = courier.tries
            upto = max(courier.startup_max, marker.others_upto)
            if self._spool.known_pending(self._route, marker.upto, upto):
                if courier.accepting:
                    return
                if _wants_try(marker, courier):
                    return  # try the destination first (`_flush_cuts_short`)
                if in_memory:  # the destination is not accepting and there is no spool: not safe anywhere
                    marker.safe = False
            markers.popleft()
            marker.done.set()

    def _others_upto(self) -> int:
        """Rows that other processes of our key spooled and left free (worker processes that
        ended) are waited for by a flush like ours: free the rows of processes that died (a
        worker killed before it could let go of them), and wait for those up to the newest."""
        if self._spool.reap():
            self._kick.set()  # rows just freed: the next round claims them, not the idle poll's
        return self._spool.max_id()
