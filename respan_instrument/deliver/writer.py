"""The writer: the thread that encodes what callers queued and writes it to the spool."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from .._errors import background_thread_begins, report
from .destination import Destination
from .gil_lending import _Turn
from .posting import _DropReport
from .sender import Marker, Sender
from .spool import Spool

UNWRITTEN_MAX_BYTES = 16 * 1024 * 1024  # logs held while the spool refuses writes
WRITE_BATCHES = 4  # most rows the writer spools in one transaction, in the destination's batches


class Writer:
    """Queue -> spool, on its own thread ("respan-spool-writer"), for one process.

    Callers append to `queue` (the pipeline's `submit()`: a record, a log() dict, bytes they
    encoded themselves, or a flush `Marker`). Every `delay` seconds, or when woken, a pass has
    the destination encode what was queued when it began and writes it to the spool in batches
    the destination takes; the sender is told of the rows, and of each flush whose logs are
    written. While the spool refuses writes, encoded logs are held (at most
    `UNWRITTEN_MAX_BYTES`, the oldest dropped and reported) and tried again.
    """

    def __init__(
        self,
        spool: Spool,
        destination: Destination,
        encode: Callable[[Any], list[bytes]],
        sender: Sender,
        *,
        delay: float,
        overflowed: Callable[[], int],
        hard_queue: int,
    ) -> None:
        """`spool`: the writer's own handle (a twin of the sender's: its own connection, no
        checkpoints). `overflowed()`: logs callers could not queue so far, reported here."""
        self.queue: collections.deque[Any] = collections.deque()
        self.wake = threading.Event()
        self.turn = _Turn(self.wake)  # when it wants the GIL
        self.spool = spool
        self.stopping = False  # the thread ends once the queue is empty
        self.last_id = 0  # our last row written
        self.unwritten: list[bytes] = []  # encoded, refused by the spool so far
        self.trimmed = 0  # dropped by the spool's size cap
        self.unwritable = 0  # dropped while the spool refused writes
        self.unbuilt = 0  # the destination failed to encode (reported by type)
        self._destination = destination
        self._encode = encode
        self._sender = sender
        self._delay = delay
        self._overflowed = overflowed
        self._overflow_seen = overflowed()
        self._hard_queue = hard_queue
        self.overflow_report = _DropReport(
            "respan_instrument: dropped %d log(s): calls finished faster than the background "
            "writer could spool them (queue limit %d)"
        )
        self.trim_report = _DropReport(
            "respan_instrument: dropped the %d oldest log(s) from %s: it reached its "
            "size cap (RESPAN_SPOOL_MAX_MB=%d)"
        )
        self.unwritable_report = _DropReport(
            "respan_instrument: dropped the %d oldest log(s) waiting to be written: %s "
            "refuses writes and at most %d MB are held in memory meanwhile"
        )
        self.thread = threading.Thread(target=self._run, name="respan-spool-writer", daemon=True)

    @property
    def lost(self) -> int:
        """Logs this writer dropped: spool size cap, a spool that refused writes, or unbuilt."""
        return self.trimmed + self.unwritable + self.unbuilt

    def finish(self) -> None:
        """End the thread once what is queued is written."""
        self.stopping = True
        self.wake.set()

    def say_drops(self) -> None:
        """Report at once the drops not reported yet (at shutdown)."""
        self.overflow_report.emit(self._hard_queue)
        self.trim_report.emit(self.spool.place, self.spool.max_bytes >> 20)
        self.unwritable_report.emit(self.spool.place, UNWRITTEN_MAX_BYTES >> 20)

    def _run(self) -> None:
        background_thread_begins()
        try:  # the sender's handle first: a twin opens after its primary
            self._sender.spool.open()
            self.spool.open(checkpoints=False)
        except Exception as exc:  # noqa: BLE001 - reported; the sender still starts
            report("opening the spool", exc)
        finally:
            self._sender.spool_opened()
        turn = self.turn
        while True:
            turn.sleeping(self._delay)
            self.wake.wait(self._delay)
            turn.awake()
            self.wake.clear()
            try:
                self._drain()
                self._sender.nudge()
            except Exception as exc:  # noqa: BLE001 - never let the writer die
                report("the spool writer", exc)
            if self.stopping and not self.queue:
                break
        turn.gone()

    def _drain(self) -> None:
        """Spool what was queued when the pass began, and no more.

        Items that callers add meanwhile wait for the next pass. Chasing them instead kept the
        writer awake for as long as callers were busy, one tiny transaction and one GIL handoff
        per call, each paid on the caller's thread (benchmarks/bench_process.py shows it).
        """
        queue = self.queue
        if self.unwritten:
            self._write([])
        todo = len(queue)
        # a few posts' worth to one transaction: each commit hands the GIL back and forth
        max_batch, max_bytes = WRITE_BATCHES * self._destination.max_batch, self._destination.max_batch_bytes
        encode = self._encode
        while todo > 0:
            bodies: list[bytes] = []
            size = 0
            marker = None
            while todo > 0 and len(bodies) < max_batch and size < max_bytes:
                todo -= 1
                item = queue.popleft()
                if isinstance(item, Marker):
                    marker = item
                    break
                if isinstance(item, bytes):  # encoded by the caller (see Pipeline._compact)
                    bodies.append(item)
                    size += len(item)
                    continue
                try:
                    encoded = encode(item)
                except Exception as exc:  # noqa: BLE001 - one bad record must not cost the others
                    report("building a request log", exc)
                    self.unbuilt += 1
                    continue
                bodies.extend(encoded)
                size += sum(map(len, encoded))
            if bodies:
                self._write(bodies)
            if marker is not None:
                marker.upto = self.last_id
                marker.safe = not self.unwritten
                marker.written.set()
                self._sender.settle_after(marker)
        overflow = self._overflowed()
        if overflow != self._overflow_seen:
            self.overflow_report.add(overflow - self._overflow_seen, self._hard_queue)
            self._overflow_seen = overflow

    def _write(self, bodies: list[bytes]) -> None:
        batch = self.unwritten + bodies if self.unwritten else bodies
        try:
            last, trimmed = self.spool.append(self._destination.route, batch)
        except Exception as exc:  # noqa: BLE001 - disk full, locked too long: keep (bounded), retry
            report("writing to the spool", exc)
            self.unwritten = batch
            total = sum(len(body) for body in batch)
            while self.unwritten and total > UNWRITTEN_MAX_BYTES:
                total -= len(self.unwritten.pop(0))
                self.unwritable += 1
                self.unwritable_report.add(1, self.spool.place, UNWRITTEN_MAX_BYTES >> 20)
            return
        self.turn.awake()
        self.unwritten = []
        self.last_id = last
        if trimmed:
            self.trimmed += trimmed
            self.trim_report.add(trimmed, self.spool.place, self.spool.max_bytes >> 20)
        self._sender.rows_written(last, batch, whole=not trimmed)


__all__ = ["UNWRITTEN_MAX_BYTES", "Writer"]
