"""The background pipeline: a bounded queue from callers, a writer that spools, a sender that delivers.

    caller --submit()--> deque --writer thread--> spool (SQLite) --sender thread--> destination

`submit()` is the caller's whole cost: a deque append (no lock, no I/O). The writer wakes every
`schedule_delay` seconds (or at 500 queued items), encodes the logs and writes each batch to the
spool in one statement, so a crash loses at most the calls of the last ~0.5 s. The sender
drives a `Poster`: it claims rows from the spool, posts them through the `Destination`, and
deletes them once the destination accepted them. The writer never waits on the network, so a
slow or dead destination grows the spool, not memory.

Memory stays bounded: at most `MAX_QUEUE` call records wait for the writer; if the writer falls
further behind (busy application threads can starve it of the GIL for seconds), the caller
encodes its log itself (its bytes only, no lock, no I/O) up to `HARD_QUEUE`; past that a
log is dropped, counted and reported on the `respan_instrument` logger.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .._errors import log_once, logger, report
from . import fork
from .destination import Destination
from .gil_lending import LEND_SECONDS
from .http import RETRY_BASE, RETRY_CAP, RetryPolicy
from .sender import Marker, Sender
from .spool import Spool, owner_token
from .writer import Writer

MAX_QUEUE = 4096  # call records waiting for the writer (a short chat's ~1 KB: its JSON sent and received)
HARD_QUEUE = 32_768  # beyond MAX_QUEUE, logs wait encoded (~1 KB); beyond this, dropped (counted, reported)
WAKE_AT = 1000  # queued items that wake the writer before its timer
SCHEDULE_DELAY = 0.5  # seconds between writer passes: the crash window


class Pipeline:
    """Turns finished calls into encoded logs and delivers them to one destination, durably.

    `submit()` is the only method on the caller's hot path. `flush()` and `shutdown()` block,
    bounded by their timeout. The destination encodes its own rows (`destination.encoder`);
    a `Writer` spools them and a `Sender` delivers them, each on its thread, afresh in a
    forked child.
    """

    # per process: `_start()` sets these afresh in a forked child
    _writer: Writer
    _sender: Sender
    _drops_seen: int  # `lost` when the last flush looked

    def __init__(
        self,
        destination: Destination,
        *,
        spool_dir: str,
        fallback_dir: str | None = None,
        spool_max_mb: int = 1024,
        max_queue: int = MAX_QUEUE,
        hard_queue: int = HARD_QUEUE,
        schedule_delay: float = SCHEDULE_DELAY,
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        """The spool's directories (`fallback_dir`: where to go when `spool_dir` cannot be used)
        and the tuning knobs are handed down by the wiring (`_setup`)."""
        encoder = destination.encoder
        if encoder is None:
            raise ValueError(f"a pipeline to {destination.name} needs the destination's encoder")
        self._destination = destination
        self._encode = encoder.encode
        self._encode_on_caller = encoder.encode_on_caller
        self._spool_dir = spool_dir
        self._fallback_dir = fallback_dir
        self._spool_max = spool_max_mb * 1024 * 1024
        self._max_queue = max_queue
        self._hard_queue = max(max_queue, hard_queue)
        self._compacted = 0  # logs the caller encoded itself because the writer lagged
        self._lent = 0  # times a caller lent the GIL to the lagging writer
        self._late = 0  # logs submitted after shutdown (dropped, reported once)
        self._delay = schedule_delay
        self._policy = RetryPolicy(base=retry_base, cap=retry_cap)
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
        seconds at a time): keep the log, but as its encoded bytes, one object and a fraction of
        the memory of a record that holds a stream's events or an SDK model. The caller pays the
        building it would otherwise have left to the writer; no lock, no I/O."""
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
        if self._closed or not self._writer.thread.is_alive():
            return not self._queue
        marker = Marker(time.monotonic() + timeout)
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
        if self._closed or not self._writer.thread.is_alive():
            return not self._queue
        if not self._queue and not self._writer.unwritten and self._wturn.wanted != 0.0:
            return True  # the writer is asleep with nothing queued: all of it is written
        marker = Marker()
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
        self._sender.finish()
        self._writer.finish()
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
        self._sender.hold()  # its next round posts nothing
        ok = self.persist(timeout)
        self._closed = True
        self._sender.finish()
        self._writer.finish()
        self._close(deadline, settle=True)
        return ok

    def on_the_wire(self) -> float:
        """Seconds that a post of ours on the wire may still take before it gives up (0: none is)."""
        return self._sender.on_the_wire()

    def _close(self, deadline: float, settle: bool = False) -> None:
        """Stop both threads (by `deadline`), say what is lost, and let go of the spool's rows.

        With `settle`, a post on the wire at the deadline is waited for until it is answered
        and its rows deleted or kept: the process is about to end and another one takes its
        rows over at once (a terminated pool worker's parent). Left on the wire, a post that
        the destination accepted after all would be sent again by that process."""
        writer, sender = self._writer, self._sender
        writer.thread.join(max(0.05, deadline - time.monotonic()))
        sender.thread.join(max(0.05, deadline - time.monotonic()))
        if settle and sender.thread.is_alive() and sender.on_the_wire() > 0:
            sender.thread.join(sender.on_the_wire() + 1.0)
        writer.say_drops()
        sender.poster.rejections.emit()
        self._say_left_behind()
        if not writer.thread.is_alive() and not sender.thread.is_alive():
            try:  # hand what is left to the next process (or pipeline) at once, not after a lease
                sender.poster.forget_settled()  # (if the spool still refuses, nothing is let go of)
                sender.spool.release()
                writer.spool.close()
                sender.spool.close()
            except Exception as exc:  # noqa: BLE001 - shutting down must not raise
                report("closing the spool", exc)
            self._destination.close()

    def _say_left_behind(self) -> None:
        """Count on the logger what this process is about to lose: logs never written to a
        spool (still queued when the deadline came, or refused by it) and, with no usable spool
        directory, everything the destination has not accepted yet."""
        writer, spool = self._writer, self._sender.spool
        try:
            queued = sum(1 for item in list(writer.queue) if not isinstance(item, Marker))
            unwritten = len(writer.unwritten)
            in_memory = spool.count() if spool.in_memory else 0
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
            reasons.append(f"{unwritten} refused by {writer.spool.place}")
        if queued:
            reasons.append(
                f"{queued} not yet written to {writer.spool.place} by the exit deadline (RESPAN_EXIT_TIMEOUT)"
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
        return self._overflow + self._writer.lost + self._unbuilt_by_callers

    def _overflowed(self) -> int:
        return self._overflow

    def _start(self) -> None:
        """This process's writer and sender, and their threads (afresh in a forked child)."""
        spool = Spool(
            self._spool_dir, self._spool_max, owner_token(), self._destination.key, self._fallback_dir
        )
        # a batch that is not full waits at most two writer passes to be posted
        self._sender = Sender(spool, self._destination, self._policy, post_delay=2 * self._delay)
        self._writer = Writer(
            spool.twin(),
            self._destination,
            self._encode,
            self._sender,
            delay=self._delay,
            overflowed=self._overflowed,
            hard_queue=self._hard_queue,
        )
        # what submit() touches on every call, one attribute away (the writer and sender own them)
        self._queue = self._writer.queue
        self._wake = self._writer.wake
        self._wturn = self._writer.turn
        self._sturn = self._sender.turn
        self._drops_seen = self.lost
        self._fork_locks: list[Any] = []  # the spool locks held across a fork
        self._writer.thread.start()
        self._sender.thread.start()

    # ---- fork (called by deliver.fork's at-fork hooks) -----------------------------------
    def before_fork(self, deadline: float) -> None:
        """No spool operation of ours may be half done in the child's copy of SQLite: hold the
        spools' locks across the fork, waiting for them until `deadline` (monotonic), no longer."""
        spools = (self._sender.spool, self._writer.spool)
        locks = {id(spool.lock): spool.lock for spool in spools}.values()
        self._fork_locks = [
            lock for lock in locks if lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        ]

    def after_fork_in_parent(self) -> None:
        locks, self._fork_locks = self._fork_locks, []
        for lock in reversed(locks):
            lock.release()

    def after_fork_in_child(self) -> None:
        # the parent's threads, queue, connections and leases are not ours: start afresh
        fork.inherited(self._sender.spool, self._writer.spool, self._destination)
        if self._closed:
            return
        self._destination = self._destination.forked()
        self._start()


__all__ = ["HARD_QUEUE", "MAX_QUEUE", "Pipeline"]
