"""The background pipeline: a bounded queue from callers, a writer that spools, a sender that delivers.

    caller --submit()--> deque --writer thread--> spool (SQLite) --sender thread--> destination

`submit()` is the caller's whole cost: a deque append (no lock, no I/O). The writer wakes every
`schedule_delay` seconds (or at 500 queued items), encodes the logs and writes each batch to the
spool in one statement, so a crash loses at most the calls of the last ~0.5 s. The sender
drives a `Courier`: it claims rows from the spool, posts them through the `Destination`, and
deletes them once the destination accepted them. The writer never waits on the network, so a
slow or dead destination grows the spool, not memory.

Memory stays bounded: at most `MAX_QUEUE` call records wait for the writer; if the writer falls
further behind (busy application threads can starve it of the GIL for seconds), the caller
encodes its log itself (a sixth of the memory, no lock, no I/O) up to `HARD_QUEUE`; past that a
log is dropped, counted and reported on the `respan_instrument` logger.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .._config import env_number
from .._errors import log_once, logger, report
from . import fork
from .courier import Courier, _DropReport
from .destination import Destination
from .http import RetryPolicy
from .spool import Spool, owner_token, resolve_dir
from .threads import UNWRITTEN_MAX_BYTES, _Marker, _Threads
from .turns import LEND_SECONDS, SENDER_GAP, _Turn

MAX_QUEUE = 4096  # call records (~6 KB each) waiting for the writer
HARD_QUEUE = 32_768  # beyond MAX_QUEUE, logs wait encoded (~1 KB); beyond this, dropped (counted, reported)
WAKE_AT = 500  # queued items that wake the writer before its timer
SCHEDULE_DELAY = 0.5  # seconds between writer passes: the crash window


class Pipeline(_Threads):
    """Turns finished calls into encoded logs and delivers them to one destination, durably.

    `submit()` is the only method on the caller's hot path. `flush()` and `shutdown()` block,
    bounded by their timeout. Tuning knobs default from the environment (for tests):
    `RESPAN_SCHEDULE_DELAY`, `RESPAN_RETRY_BASE`, `RESPAN_RETRY_CAP`.
    """

    def __init__(
        self,
        destination: Destination,
        encode: Callable[[Any], list[bytes]],
        *,
        spool_dir: str | None = None,
        spool_max_mb: int = 1024,
        max_queue: int = MAX_QUEUE,
        hard_queue: int = HARD_QUEUE,
        schedule_delay: float | None = None,
        retry_base: float | None = None,
        retry_cap: float | None = None,
        encode_on_caller: Callable[[Any], list[bytes]] | None = None,
    ) -> None:
        """`encode` turns a submitted item (a call's record, or a log() dict) into the logs the
        destination gets, as bytes (none, one, or several); it runs on the writer thread, or on a caller's when the writer
        lags far behind (`encode_on_caller` there, when given)."""
        self._destination = destination
        self._route = destination.route
        self._encode = encode
        self._encode_on_caller = encode_on_caller or encode
        self._spool_dir = resolve_dir(spool_dir)
        self._spool_max = spool_max_mb * 1024 * 1024
        self._max_queue = max_queue
        self._hard_queue = max(max_queue, hard_queue)
        self._compacted = 0  # logs the caller encoded itself because the writer lagged
        self._lent = 0  # times a caller lent the GIL to the lagging writer
        self._late = 0  # logs submitted after shutdown (dropped, reported once)
        self._delay = schedule_delay or env_number("RESPAN_SCHEDULE_DELAY", SCHEDULE_DELAY)
        self._policy = RetryPolicy(
            base=retry_base or env_number("RESPAN_RETRY_BASE", 0.5),
            cap=retry_cap or env_number("RESPAN_RETRY_CAP", 30.0),
        )
        self._closed = False
        self._overflow = 0  # logs the hot path could not queue (caller threads only increment it)
        self._unbuilt_by_callers = 0  # logs a caller failed to encode in _compact (caller threads only)
        self._start()
        fork.watch(self)

    # ---- caller side -------------------------------------------------------------------
    def submit(self, item: Any) -> None:
        """Queue a finished call's record (or a built log dict): a deque append, no lock, no I/O.

        While one of our background threads waits for the GIL, the caller pauses 0.2 ms to hand
        it over (see `_Turn`). Past `MAX_QUEUE` queued, the caller encodes its own log.
        """
        if self._closed:  # a call that finished after uninstrument() or a new instrument()
            self._late += 1
            log_once(
                "late-log",
                "respan_instrument: dropped the log of a call that finished after its pipeline was "
                "shut down (uninstrument() or a new instrument() while it was in flight)",
            )
            return
        queue = self._queue
        waiting = len(queue)
        if waiting < self._max_queue:
            queue.append(item)
            if waiting >= WAKE_AT and not self._wake.is_set():
                self._wturn.wake()
        elif waiting < self._hard_queue:
            self._compact(item)
        else:
            self._overflow += 1  # the writer reports it; memory stays bounded
        now = time.monotonic()
        w, t = self._wturn, self._sturn  # (Turn.needs() written out: this runs on every call)
        if (now >= w.wanted and now >= w.next_pause) or (now >= t.wanted and now >= t.next_pause):
            self._lend_gil(now)

    def _lend_gil(self, now: float) -> None:
        """Let a waiting background thread have the GIL: a short sleep is the one way to."""
        aio = sys.modules.get("asyncio")
        if aio is not None and aio._get_running_loop() is not None:
            return  # never block an event loop; it gives the GIL away whenever it waits
        for turn in (self._wturn, self._sturn):
            if turn.needs(now):
                turn.lent(now)
        self._lent += 1
        time.sleep(LEND_SECONDS)

    def _compact(self, item: Any) -> None:
        """The writer is far behind (starved of the GIL by busy application threads, seen for
        seconds at a time): keep the log, but as its encoded bytes, a sixth of a record's memory.
        The caller pays the building it would otherwise have left to the writer; no lock, no I/O."""
        try:
            bodies = self._encode_on_caller(item)
        except Exception as exc:  # noqa: BLE001 - never into the user's call
            report("building a request log", exc)
            self._unbuilt_by_callers += 1
            return
        self._queue.extend(bodies)
        self._compacted += 1
        if not self._wake.is_set():
            self._wturn.wake()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every log this process knows of (its own, and those of its key found in
        the spool at start-up) was accepted by the destination or, while it is not accepting, is
        safely in the spool. False on timeout, if logs were dropped since the previous flush,
        or while logs wait in memory only (no usable spool directory)."""
        if self._closed or not self._writer.is_alive():
            return not self._queue
        marker = _Marker(time.monotonic() + timeout)
        self._queue.append(marker)
        self._wake.set()
        done = marker.done.wait(timeout)
        drops = self.lost
        clean = drops == self._drops_seen
        self._drops_seen = drops
        return done and marker.safe and clean

    def persist(self, timeout: float = 5.0) -> bool:
        """Block until every log submitted so far is written to the spool (not delivered).

        For a process about to vanish without an exit hook (a `multiprocessing` worker sending
        its result, then terminated): what is in the spool is delivered by another process.
        Returns at once when nothing was submitted since the writer last went to sleep. False
        on timeout, or when the spool refuses writes.
        """
        if self._closed or not self._writer.is_alive():
            return not self._queue
        if not self._queue and not self._unwritten and self._wturn.wanted != 0.0:
            return True  # the writer is asleep with nothing queued: all of it is written
        marker = _Marker()
        self._queue.append(marker)
        self._wturn.wake()
        return marker.written.wait(timeout) and marker.safe

    def shutdown(self, timeout: float = 5.0, *, settle: bool = False) -> bool:
        """Flush within `timeout`, then stop. What was not delivered stays in the spool; with no
        usable spool directory it is lost, and counted on the logger.

        `settle`: a post still on the wire at the deadline is waited for (up to the
        destination's `wire_timeout`), for a process whose rows another process takes over at
        once (see `_close`)."""
        if self._closed:
            return not self._queue
        deadline = time.monotonic() + timeout
        ok = self.flush(timeout)
        self._closed = True
        self._stopping = True
        self._stop.set()
        self._wake.set()
        self._kick.set()
        self._close(deadline, settle)
        return ok

    def hand_over(self, timeout: float) -> bool:
        """For a process about to be ended by a signal: within `timeout`, write what is queued to
        the spool and let go of it for another process of the same key to deliver.

        No new post starts. A post already on the wire is waited for, even past `timeout` (up to
        the destination's `wire_timeout`), so that rows the destination accepted are deleted,
        not sent again by the next process. False when not all of it reached the spool in time
        (or the spool refused it)."""
        if self._closed:
            return not self._queue
        deadline = time.monotonic() + timeout
        self._stop.set()  # the sender's next round posts nothing
        ok = self.persist(timeout)
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._kick.set()
        self._close(deadline, settle=True)
        return ok

    def on_the_wire(self) -> float:
        """Seconds that a post of ours on the wire may still take before it gives up (0: none is)."""
        since = self._courier.posting_since
        if not since:
            return 0.0
        return max(0.0, since + float(self._destination.wire_timeout) - time.monotonic())

    def _close(self, deadline: float, settle: bool = False) -> None:
        """Stop both threads (by `deadline`), say what is lost, and let go of the spool's rows.

        With `settle`, a post on the wire at the deadline is waited for until it is answered
        and its rows deleted or kept: the process is about to end and another one takes its
        rows over at once (a terminated pool worker's parent). Left on the wire, a post that
        the destination accepted after all would be sent again by that process."""
        self._writer.join(max(0.05, deadline - time.monotonic()))
        self._sending.join(max(0.05, deadline - time.monotonic()))
        if settle and self._sending.is_alive() and self.on_the_wire() > 0:
            self._sending.join(self.on_the_wire() + 1.0)
        self._overflow_report.emit(self._hard_queue)
        self._trim_report.emit(self._spool.place, self._spool.max_bytes >> 20)
        self._unwritable_report.emit(self._spool.place, UNWRITTEN_MAX_BYTES >> 20)
        self._courier.rejections.emit()
        self._say_left_behind()
        if not self._writer.is_alive() and not self._sending.is_alive():
            try:  # hand what is left to the next process (or pipeline) at once, not after a lease
                self._courier.forget_settled()  # (if the spool still refuses, nothing is let go of)
                self._spool.release()
                self._wspool.close()
                self._spool.close()
            except Exception as exc:  # noqa: BLE001 - shutting down must not raise
                report("closing the spool", exc)
            self._destination.close()

    def _say_left_behind(self) -> None:
        """Count on the logger what this process is about to lose: logs never written to a
        spool (still queued when the deadline came, or refused by it) and, with no usable spool
        directory, everything the destination has not accepted yet."""
        try:
            queued = sum(1 for item in list(self._queue) if not isinstance(item, _Marker))
            unwritten = len(self._unwritten)
            in_memory = self._spool.count() if self._spool.in_memory else 0
        except Exception as exc:  # noqa: BLE001 - shutting down must not raise
            report("counting logs left at exit", exc)
            return
        reasons = []
        if in_memory:
            reasons.append(
                f"{in_memory} not accepted by {self._destination.name} and kept in memory only (no usable spool "
                "directory; set RESPAN_SPOOL_DIR to a writable one)"
            )
        if unwritten:
            reasons.append(f"{unwritten} refused by {self._wspool.place}")
        if queued:
            reasons.append(
                f"{queued} not yet written to {self._wspool.place} by the exit deadline (RESPAN_EXIT_TIMEOUT)"
            )
        if reasons:
            logger.warning(
                "respan_instrument: %d log(s) lost at exit: %s",
                in_memory + unwritten + queued,
                "; ".join(reasons),
            )

    @property
    def lost(self) -> int:
        """Logs dropped so far: queue overflow, spool size cap, a spool that refused writes, or a log
        that could not be built."""
        return self._overflow + self._trimmed + self._unwritable + self._unbuilt + self._unbuilt_by_callers

    # ---- threads -----------------------------------------------------------------------
    def _start(self) -> None:
        self._owner = owner_token()
        self._queue = collections.deque()
        self._markers = collections.deque()
        self._wake = threading.Event()  # the writer's
        self._kick = threading.Event()  # the sender's
        self._retry_at = 0.0  # the sender backs off until then (monotonic)
        self._wturn = _Turn(self._wake)  # when the writer wants the GIL
        self._sturn = _Turn(self._kick, SENDER_GAP)  # when the sender wants it
        self._stop = threading.Event()
        self._ready = threading.Event()  # the spool is open
        self._stopping = False
        self._last_id = 0
        self._unwritten = []
        self._trimmed = 0
        self._unwritable = 0
        self._unbuilt = 0  # logs the writer failed to build (reported by type, counted as lost)
        self._overflow_seen = self._overflow
        self._drops_seen = self.lost
        self._fork_locks = []
        self._overflow_report = _DropReport(
            "respan_instrument: dropped %d log(s): calls finished faster than the background "
            "writer could spool them (queue limit %d)"
        )
        self._trim_report = _DropReport(
            "respan_instrument: dropped the %d oldest log(s) from %s: it reached its "
            "size cap (RESPAN_SPOOL_MAX_MB=%d)"
        )
        self._unwritable_report = _DropReport(
            "respan_instrument: dropped the %d oldest log(s) waiting to be written: %s "
            "refuses writes and at most %d MB are held in memory meanwhile"
        )
        self._spool = Spool(self._spool_dir, self._spool_max, self._owner, self._destination.key)
        self._wspool = self._spool.twin()
        self._checkpointed = 0.0
        self._courier = Courier(self._spool, self._destination, self._policy)
        self._courier.progress = self._sturn.awake
        self._courier.on_the_wire = self._sturn.sleeping
        self._writer = threading.Thread(target=self._write_loop, name="respan-spool-writer", daemon=True)
        self._sending = threading.Thread(target=self._send_loop, name="respan-sender", daemon=True)
        self._writer.start()
        self._sending.start()

    # ---- fork (called by deliver.fork's at-fork hooks) -----------------------------------
    def before_fork(self) -> None:
        # no spool operation of ours may be half done in the child's copy of SQLite
        locks = {id(lock): lock for lock in (self._spool.lock, self._wspool.lock)}.values()
        self._fork_locks = [lock for lock in locks if lock.acquire(timeout=1.0)]

    def after_fork_in_parent(self) -> None:
        locks, self._fork_locks = self._fork_locks, []
        for lock in reversed(locks):
            lock.release()

    def after_fork_in_child(self) -> None:
        # the parent's threads, queue, connections and leases are not ours: start afresh
        fork.inherited(self._spool, self._wspool, self._destination)
        if self._closed:
            return
        self._destination = self._destination.forked()
        self._start()


__all__ = ["HARD_QUEUE", "MAX_QUEUE", "Pipeline"]
