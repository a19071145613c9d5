"""The sender: the thread that delivers the spool's rows to the destination and settles flushes.

It drives a `Poster` (claim rows, post them, delete what was accepted), backs off while the
destination does not accept, keeps the spool's WAL short, looks after the spool while idle,
and answers each flush once the logs before it were accepted (or, while the destination does
not accept, are safe in the spool).
"""

from __future__ import annotations

import collections
import sys
import threading
import time

from opentelemetry import context as otel_context

from .._errors import background_thread_begins, report
from .destination import Destination
from .gil_lending import SENDER_GAP, _Turn
from .http import RetryPolicy, Verdict
from .posting import Poster
from .spool import LEASE, Spool

IDLE_POLL = 10.0  # seconds between looks for rows freed by other processes
POST_DELAY = 1.0  # seconds the oldest of fewer rows than a full batch may wait to be posted
HELD_MAX = 4000  # rows just spooled that the sender keeps in memory, to post without reading them back ...
HELD_MAX_BYTES = 8 * 1024 * 1024  # ... and their bytes at most
HELD_MARGIN = 10.0  # seconds of lease a held row must have left beyond a post's longest wait
CHILDREN_POLL = 1.0  # ... while this process has multiprocessing children, which free rows as they end


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


class Marker:
    """A flush request travelling through the queue behind every log submitted before it."""

    __slots__ = ("done", "upto", "safe", "written", "others_upto", "deadline", "tries_at")

    def __init__(self, deadline: float | None = None) -> None:
        # monotonic: when the flush that sent it gives up; None for `persist()`, which waits
        # for the spool only and must not bring a backed-off try forward
        self.deadline = deadline
        self.tries_at = -1  # the poster's tries when the sender first saw it (-1: not yet)
        self.done = threading.Event()
        self.upto = 0  # our last spool row written before the marker
        self.safe = True  # False when logs before it could not be written to the spool
        self.written = threading.Event()  # the writer got to it: logs before it are in the spool
        self.others_upto = -1  # rows of other processes up to this id are waited for too (-1: not looked yet)


def _wants_try(marker: Marker, poster: Poster) -> bool:
    """Does this flush still wait for a try of the destination (see `Sender._resolve_markers`)?"""
    return (
        marker.deadline is not None
        and marker.tries_at == poster.tries
        and poster.asked_until <= marker.deadline
    )


class Sender:
    """Spool -> destination, on its own thread ("respan-sender"), for one process.

    It starts once the writer has opened the spool (`spool_opened`); the writer tells it of
    rows written (`rows_written`) and hands it the flushes whose logs are in the spool
    (`settle_after`). `hold()` lets no new post start; `finish()` ends the thread.
    """

    def __init__(
        self, spool: Spool, destination: Destination, policy: RetryPolicy, post_delay: float = POST_DELAY
    ) -> None:
        self.spool = spool  # its own handle, the one that checkpoints (and answers flushes)
        self.destination = destination
        self.poster = Poster(spool, destination, policy)
        self.kick = threading.Event()  # wakes the thread
        self.turn = _Turn(self.kick, SENDER_GAP)  # when it wants the GIL
        self.poster.progress = self.turn.awake
        self.poster.on_the_wire = self.turn.sleeping
        self.stop = threading.Event()  # set: no new post starts
        self.stopping = False  # the thread ends at its next round
        self.retry_at = 0.0  # backing off until then (monotonic)
        self.markers: collections.deque[Marker] = collections.deque()
        self._ready = threading.Event()  # the spool is open
        self._written = 0  # the writer's last row id
        self._post_delay = post_delay
        self._rows_in = 0  # rows the writer wrote (the writer's count) ...
        self._rows_out = 0  # ... and rows posted since (the sender's): the difference waits
        self._waiting_since = 0.0  # when the oldest of the rows waiting was written
        # rows the writer just spooled, leased to us: (first id, bodies, when the lease ends on
        # the monotonic clock); the writer appends, the sender takes, each counting what it moved
        self.held: collections.deque[tuple[int, list[bytes], float]] = collections.deque()
        self._held_in = self._held_bytes_in = 0
        self._held_out = self._held_bytes_out = 0
        self._checkpointed = 0.0
        self._housekept = 0.0  # when the idle sender last reaped and compacted the spool
        self.thread = threading.Thread(target=self._run, name="respan-sender", daemon=True)

    # ---- told by the writer ------------------------------------------------------------
    def spool_opened(self) -> None:
        """The writer opened the spool (or failed to): rows may be claimed."""
        self._ready.set()

    def rows_written(self, last_id: int, bodies: list[bytes], whole: bool) -> None:
        """The writer wrote `bodies` as the rows up to id `last_id` (one transaction: their ids
        follow each other), leased to us. `whole`: none of them was trimmed by the size cap.

        Unless too many wait already, they are held in memory and posted from there: reading
        them back from the spool (`Spool.claim` rewrites every row to lease it, then copies
        them out) cost more than the post itself."""
        now = time.monotonic()
        if self._rows_in <= self._rows_out:
            self._waiting_since = now
        size = sum(map(len, bodies))
        if (
            whole
            and self._held_in - self._held_out + len(bodies) <= HELD_MAX
            and self._held_bytes_in - self._held_bytes_out + size <= HELD_MAX_BYTES
        ):
            self.held.append((last_id - len(bodies) + 1, bodies, now + LEASE))
            self._held_in += len(bodies)
            self._held_bytes_in += size
        self._rows_in += len(bodies)
        self._written = last_id
        self.nudge()

    def nudge(self) -> None:
        """The writer, after each of its passes: come for the rows waiting once they fill a
        batch or the oldest has waited `post_delay`, unless backing off (the sender would only
        sleep again).

        Every post wakes the sender again and again, each time taking the GIL from a busy
        caller (its SQLite and socket steps each hand it back), so a post per writer pass cost
        callers more than the post itself; full batches halve the posts of a busy process, and a
        quiet one still has its logs in Respan within about a second.
        """
        now = time.monotonic()
        if self._rows_in > self._rows_out and self._due(now) and now >= self.retry_at:
            self.turn.wake()

    def _due(self, now: float) -> bool:
        return (
            self._rows_in - self._rows_out >= self.destination.max_batch
            or now - self._waiting_since >= self._post_delay
        )

    def settle_after(self, marker: Marker) -> None:
        """A flush whose logs are all in the spool: answer it once they are delivered."""
        self.markers.append(marker)
        self.turn.wake()

    # ---- told by the pipeline ----------------------------------------------------------
    def hold(self) -> None:
        """No new post starts; one on the wire is answered."""
        self.stop.set()

    def finish(self) -> None:
        """End the thread at its next round (no new post starts)."""
        self.stopping = True
        self.stop.set()
        self.kick.set()

    def on_the_wire(self) -> float:
        """Seconds that a post on the wire may still take before it gives up (0: none is)."""
        since = self.poster.posting_since
        if not since:
            return 0.0
        return max(0.0, since + float(self.destination.wire_timeout) - time.monotonic())

    # ---- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        background_thread_begins()
        _suppress_our_tracing()
        self._ready.wait()
        poster = self.poster
        try:
            poster.start()
        except Exception as exc:  # noqa: BLE001 - reported; delivery goes on
            report("reading the spool", exc)
        self.retry_at = next_try = 0.0
        self._housekept = time.monotonic()
        turn = self.turn
        while not self.stopping:
            try:
                turn.awake()
                now = time.monotonic()
                if now - self._checkpointed >= 1.0:  # keep the WAL short; its fsync lands here
                    self._checkpointed = now
                    self.spool.checkpoint()
                if now < next_try:
                    self._resolve_markers()
                    next_try = self.retry_at = self._flush_cuts_short(now, next_try)
                if now < next_try:
                    turn.sleeping(next_try - now)
                    self.kick.wait(next_try - now)
                    self.kick.clear()
                    continue
                if not self.markers and self._rows_in > self._rows_out and not self._due(now):
                    # a kick for rows a post took meanwhile: the few left wait for `nudge`
                    turn.sleeping(IDLE_POLL)
                    self.kick.wait(IDLE_POLL)
                    self.kick.clear()
                    continue
                written = self._written
                posted = poster.delivered + poster.rejected
                rows_in = self._rows_in  # (counted once their rows were committed)
                bucket = poster.bucket.wait_time()
                rows = self._take_held(now) if bucket == 0 else []
                if rows:
                    wait = poster.post_held(rows, self.stop)
                elif bucket > 0 and self._held_in - self._held_out > self.destination.few:
                    wait = bucket  # as `round()` would: the batch grows until a bulk post may go
                else:  # a claim may take rows still held: they must not be posted twice
                    self._drop_held()
                    wait = poster.round(self.stop)
                if poster.last in (Verdict.REFUSED, Verdict.MISROUTED):
                    self._drop_held()  # the spool let go of our rows (see `Poster._settle`)
                self._rows_out = min(
                    self._rows_in, self._rows_out + poster.delivered + poster.rejected - posted
                )
                if (wait is None and not rows and not self.stop.is_set()) or self._drained(written):
                    # the spool holds none of them any more (posted, trimmed by the size cap, or
                    # let go of and delivered by another process): none waits
                    self._rows_out = max(self._rows_out, rows_in)
                self._resolve_markers()
                if wait == 0.0 and (self._drained(written) or not (self.markers or self._due(now))):
                    wait = None  # all sent, or the rest waits for a full batch (see `nudge`)
                if wait is None:  # nothing to send: sleep until the writer has more
                    poll = CHILDREN_POLL if _has_children() else IDLE_POLL
                    turn.sleeping(poll)
                    if not self.kick.wait(poll) and time.monotonic() - self._housekept >= IDLE_POLL:
                        self._housekept = time.monotonic()  # quiet for a while: housekeeping
                        self.spool.reap()
                        self.spool.compact()
                    self.kick.clear()
                else:
                    self.retry_at = next_try = time.monotonic() + wait
            except Exception as exc:  # noqa: BLE001 - never let the sender die
                report("the sender", exc)
                turn.sleeping(1.0)
                self.stop.wait(1.0)
        turn.gone()

    def _take_held(self, now: float) -> list[tuple[int, bytes]]:
        """A batch of held rows, as (id, body): those a claim took already are skipped (claims
        take the oldest rows first), and so are those whose lease runs out too soon for a post
        (another process could claim them meanwhile; a claim renews their lease)."""
        held, poster = self.held, self.poster
        limit, max_bytes = self.destination.max_batch, self.destination.max_batch_bytes
        enough = float(self.destination.wire_timeout) + HELD_MARGIN
        rows: list[tuple[int, bytes]] = []
        size = 0
        while held and len(rows) < limit:
            first, bodies, lease_end = held[0]
            take = max(0, min(len(bodies), poster.claimed_max + 1 - first))
            if lease_end - now < enough:
                take = len(bodies)
            while take < len(bodies) and len(rows) < limit:
                body = bodies[take]
                if rows and size + len(body) > max_bytes:
                    break
                rows.append((first + take, body))
                size += len(body)
                take += 1
            self._let_go(bodies[:take])
            if take == len(bodies):
                held.popleft()
                continue
            held[0] = (first + take, bodies[take:], lease_end)
            break  # a limit was reached
        return rows

    def _drop_held(self) -> None:
        """Forget the held rows: they stay in the spool, where a claim finds them."""
        while self.held:
            self._let_go(self.held.popleft()[1])

    def _let_go(self, bodies: list[bytes]) -> None:
        self._held_out += len(bodies)
        self._held_bytes_out += sum(map(len, bodies))

    def _drained(self, written: int) -> bool:
        """After a batch went through: would claiming again now find nothing?

        Yes when it took all there was to claim and reached past every row the writer had
        written before it (a claim takes the oldest claimable rows first), and no flush waits
        (a flush also waits for rows other processes left behind). Rows written since then
        come with a kick, which ends the sleep at once; the claim that would find nothing,
        once per writer pass, is skipped.
        """
        poster = self.poster
        return poster.accepting and 0 < written <= poster.claimed_upto and not self.markers

    def _flush_cuts_short(self, now: float, next_try: float) -> float:
        """When the sender backs off and a flush waits for an attempt (see `_resolve_markers`):
        the next try, brought forward to now, or to when the destination asked us to come back
        if that is before the flush gives up; never ahead of the rate limit."""
        poster = self.poster
        for marker in self.markers:
            if _wants_try(marker, poster):
                return min(next_try, max(now + poster.bucket.wait_time(), poster.asked_until))
        return next_try

    def _resolve_markers(self) -> None:
        """Settle the flushes whose logs were all accepted or, while the destination does not
        accept, are in the spool. "Does not accept" is a fresh answer: a round after the flush
        came (a post, or a claim that found nothing to post), since the last answer may be
        from before an outage ended and the backoff still far off; only a destination that
        asked for a wait past the flush's deadline (Retry-After) is taken at its word."""
        markers = self.markers
        poster = self.poster
        in_memory = self.spool.in_memory
        route = self.destination.route
        while markers:
            marker = markers[0]
            if marker.tries_at < 0:
                marker.others_upto = self._others_upto()
                marker.tries_at = poster.tries
            upto = max(poster.startup_max, marker.others_upto)
            if self.spool.known_pending(route, marker.upto, upto):
                if poster.accepting:
                    return
                if _wants_try(marker, poster):
                    return  # try the destination first (`_flush_cuts_short`)
                if in_memory:  # the destination is not accepting and there is no spool: not safe anywhere
                    marker.safe = False
            markers.popleft()
            marker.done.set()

    def _others_upto(self) -> int:
        """Rows that other processes of our key spooled and left free (worker processes that
        ended) are waited for by a flush like ours: free the rows of processes that died (a
        worker killed before it could let go of them), and wait for those up to the newest."""
        if self.spool.reap():
            self.kick.set()  # rows just freed: the next round claims them, not the idle poll's
        return self.spool.max_id()


__all__ = ["CHILDREN_POLL", "IDLE_POLL", "Marker", "Sender"]
