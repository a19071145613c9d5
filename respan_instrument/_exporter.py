"""The background pipeline: a bounded queue from callers, a writer that spools, a sender that delivers.

    caller --submit()--> deque --writer thread--> spool (SQLite) --sender thread--> Respan

`submit()` is the caller's whole cost: a deque append (no lock, no I/O). The writer wakes every
`schedule_delay` seconds (or at 500 queued items), builds and encodes the logs and writes each
batch to the spool in one statement, so a crash loses at most the calls of the last ~0.5 s. The
sender claims rows from the spool, posts them (bulk within Respan's rate limit, or one by one
through `create/`), and deletes them once Respan accepted them. The writer never waits on the
network, so a slow or dead Respan grows the spool, not memory.

Memory stays bounded: at most `MAX_QUEUE` call records wait for the writer; if the writer falls
further behind (busy application threads can starve it of the GIL for seconds), the caller
encodes its log itself (a sixth of the memory, no lock, no I/O) up to `HARD_QUEUE`; past that a
log is dropped, counted and reported on the `respan_instrument` logger.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context

from ._config import positive_number
from ._errors import hold_signals, log_once, logger, report
from ._spool import LEGACY_FP, Spool, owner_token, resolve_dir
from ._transport import BULK_PATH, CREATE_PATH, READ_TIMEOUT, Reply, RetryPolicy, Sender, Verdict
from .record.encode import encode_log, join

MAX_BATCH = 500  # Respan's bulk limit
MAX_BULK_BYTES = 8 * 1024 * 1024  # keep one request well under Respan's body limits
MAX_QUEUE = 4096  # call records (~6 KB each) waiting for the writer
HARD_QUEUE = 32_768  # beyond MAX_QUEUE, logs wait encoded (~1 KB); beyond this, dropped (counted, reported)
WAKE_AT = 500  # queued items that wake the writer before its timer
LEND_SECONDS = 0.0002  # a caller's pause that hands the GIL to a waiting background thread
LEND_GAP = 0.0005  # least time between two such pauses for one thread ...
LEND_GAP_MAX = 0.05  # ... doubled up to this while the thread makes no progress (slow disk or network)
LEND_PATIENCE = 8  # pauses without progress before the gap starts doubling (a post takes several)
SCHEDULE_DELAY = 0.5  # seconds between writer passes: the crash window
BULK_PER_MINUTE = 30  # Respan: bulk requests per minute per organisation
FEW = 5  # with no bulk request to spare, this many logs or fewer go one by one to create/
IDLE_POLL = 10.0  # seconds between looks for rows freed by other processes
REPORT_EVERY = 10.0  # seconds between warnings about dropped logs (counts accumulate)
UNWRITTEN_MAX_BYTES = 16 * 1024 * 1024  # logs held while the spool refuses writes


def _env_number(name: str, default: float) -> float:
    """A positive number from the environment (test and tuning knobs), or ValueError naming it."""
    raw = os.environ.get(name, "").strip()
    return float(positive_number(raw, name, float)) if raw else default


def _nothing() -> None:
    pass


def _suppress_our_tracing() -> None:
    """Our own HTTP requests must not be traced by an httpx instrumentation."""
    key = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")
    otel_context.attach(otel_context.set_value(key, True))


class _Turn:
    """When one of our background threads needs the GIL, so that a busy caller hands it over.

    CPython 3.11's GIL starves a thread that waits for it while another keeps releasing and
    re-taking it within the 5 ms switch interval: every release wakes the waiter, every wake
    resets its timer, and the releasing thread wins the race back. The openai SDK releases it
    on every request (os.urandom), so in a tight loop of calls our threads went without the
    GIL for 10 s and more (measured). Worse, all that time every release by the caller pays
    for waking the waiter (a futex and, on a VM, an inter-processor interrupt): measured at
    +30 µs a call. So each thread says when it will want the GIL (`wanted`, a monotonic time:
    0 while awake, its timer while asleep, never once gone), and a caller that sees the time
    has come pauses `LEND_SECONDS` in `submit()`. The caller owns `next_pause`: pauses for one
    thread are at least `gap` apart, and after `LEND_PATIENCE` pauses without progress
    (`moves`) the gap doubles, so a thread stuck on a slow disk or network costs callers at
    most 0.2 ms every 50 ms. Each side writes only its own fields, so neither can undo the
    other's. Callers running an asyncio event loop never pause (that would block the loop).
    """

    __slots__ = ("event", "wanted", "next_pause", "gap", "moves", "seen", "stale")

    def __init__(self, event: threading.Event) -> None:
        self.event = event  # what the thread waits on
        self.wanted = 0.0  # the thread's: from when it wants the GIL
        self.next_pause = 0.0  # the callers': no pause for it before this
        self.gap = LEND_GAP
        self.moves = 0
        self.seen = 0
        self.stale = 0  # pauses since the last progress

    def needs(self, now: float) -> bool:
        return now >= self.wanted and now >= self.next_pause

    def wake(self) -> None:
        """Anyone: wake the thread now, and have callers let it have the GIL."""
        if self.wanted != _NEVER:
            self.wanted = 0.0
        self.event.set()

    def awake(self) -> None:
        """The thread, whenever it got the GIL back: progress, and keep it coming."""
        self.wanted = 0.0
        self.moves += 1

    def sleeping(self, seconds: float) -> None:
        """The thread, before a timed wait: no pause is needed until it ends."""
        self.wanted = time.monotonic() + seconds
        self.moves += 1

    def gone(self) -> None:
        """The thread, as it exits: no caller may pause for it again."""
        self.wanted = _NEVER

    def lent(self, now: float) -> None:
        """The caller that paused for this thread."""
        if self.moves != self.seen:
            self.seen = self.moves
            self.stale = 0
            self.gap = LEND_GAP
        else:
            self.stale += 1
            if self.stale > LEND_PATIENCE:
                self.gap = min(self.gap * 2, LEND_GAP_MAX)
        self.next_pause = now + self.gap


_NEVER = float("inf")


class _Marker:
    """A flush request travelling through the queue behind every log submitted before it."""

    __slots__ = ("done", "upto", "safe", "written", "others_upto")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.upto = 0  # our last spool row written before the marker
        self.safe = True  # False when logs before it could not be written to the spool
        self.written = threading.Event()  # the writer got to it: logs before it are in the spool
        self.others_upto = -1  # rows of other processes up to this id are waited for too (-1: not looked yet)


class _Bucket:
    """Token bucket for Respan's bulk rate limit: never more than `per_minute` in any minute."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = float(max(1, int(per_minute) // 6))
        self.rate = max(per_minute - self.capacity, 1.0) / 60.0
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def wait_time(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class _DropReport:
    """Dropped logs are never silent: a warning at once, then at most one per `REPORT_EVERY` s."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.pending = 0
        self.last = -REPORT_EVERY

    def add(self, count: int, *args: object) -> None:
        self.pending += count
        self.emit(*args, force=False)

    def emit(self, *args: object, force: bool = True) -> None:
        now = time.monotonic()
        if self.pending and (force or now - self.last >= REPORT_EVERY):
            logger.warning(self.message, self.pending, *args)
            self.pending = 0
            self.last = now


class _Rejections:
    """Rejected logs, each reported once: a new reason at once, repeats of it summed and
    reported at most every `REPORT_EVERY` s (a systematic rejection must not flood the log)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.pending: dict[str, int] = {}
        self.last = time.monotonic()

    def add(self, reason: str, count: int, message: str, *args: object) -> None:
        if reason not in self.seen:
            self.seen.add(reason)
            logger.warning(message, *args)
            return
        self.pending[reason] = self.pending.get(reason, 0) + count
        self.emit(force=False)

    def emit(self, force: bool = True) -> None:
        now = time.monotonic()
        if self.pending and (force or now - self.last >= REPORT_EVERY):
            pending, self.pending = self.pending, {}
            for reason, count in pending.items():
                logger.warning(
                    "respan_instrument: Respan rejected %d more log(s) as invalid; they are not retried: %s",
                    count,
                    reason,
                )
            self.last = now


class Courier:
    """Delivers spooled rows for one Respan API root: batching, rate limit, verdicts, row errors.

    Not a thread: `round()` does one claim-and-post and says when to come back. The exporter's
    sender thread and `deliver_spool()` both drive it.
    """

    def __init__(
        self, spool: Spool, sender: Sender, base_url: str, policy: RetryPolicy, per_minute: float
    ) -> None:
        self.spool = spool
        self.sender = sender
        self.base = base_url
        self.policy = policy
        self.bucket = _Bucket(per_minute)
        self.accepting = True  # Respan's last answer was an acceptance (or none yet)
        self.failures = 0  # failed tries in a row
        self.last: Verdict | None = None
        self.delivered = 0
        self.rejected = 0
        self.startup_max = 0
        self.rejections = _Rejections()
        self._said: set[str] = set()
        self.progress: Callable[[], None] = _nothing  # called after each spool or network step

    def start(self) -> None:
        """Free rows of dead processes and note what the spool held before we began: ours to
        deliver, of unknown key (said once), and of other keys (left alone, said once)."""
        spool = self.spool
        spool.reap()
        self.startup_max = spool.max_id()
        everything = 1_000_000_000
        found = spool.claimable(self.base, everything)
        if found:
            logger.info(
                "respan_instrument: %d undelivered log(s) found in %s; delivering them", found, spool.place
            )
        unknown = spool.claimable(self.base, everything, key_fp=LEGACY_FP) if spool.key_fp != LEGACY_FP else 0
        if unknown:
            logger.warning(
                "respan_instrument: %d log(s) in %s were spooled by an earlier version, which did not "
                "record their API key; they are delivered with this process's key",
                unknown,
                spool.place,
            )
        foreign = spool.foreign()
        if foreign:
            logger.warning(
                "respan_instrument: %d log(s) in %s were made under another Respan API key; they are "
                "left for a process with that key (see `respan-instrument spool status`; "
                "`respan-instrument spool flush` with that key delivers them)",
                foreign,
                spool.place,
            )

    def round(self, stop: threading.Event) -> float | None:
        """Claim and post one batch: None when there is nothing to send, else seconds to wait
        before the next round (0: go on at once)."""
        if self.bucket.wait_time() > 0:
            waiting = self.spool.claimable(self.base, FEW + 1)
            if waiting == 0:
                return None
            if waiting > FEW:  # worth a bulk request: wait for one, letting the batch grow
                return self.bucket.wait_time()
            for row in self.spool.claim(self.base, FEW, MAX_BULK_BYTES):
                wait = self._post([row], stop)
                if wait:
                    return wait
            return 0.0
        rows = self.spool.claim(self.base, MAX_BATCH, MAX_BULK_BYTES)
        self.progress()
        if not rows:
            return None
        return self._post(rows, stop)

    def _post(self, rows: Sequence[tuple[int, bytes]], stop: threading.Event) -> float:
        ids = [row_id for row_id, _ in rows]
        bodies = [body for _, body in rows]
        bulk = len(rows) > 1
        if bulk:
            wait = self.bucket.wait_time()
            if wait > 0:  # only when splitting a rejected bulk
                if stop.wait(wait):
                    return 0.0
                self.spool.renew(ids)
            self.bucket.take()
        reply = self.sender.post(BULK_PATH if bulk else CREATE_PATH, join(bodies))
        self.progress()
        verdict = self.last = self.policy.verdict(reply)
        if verdict is Verdict.ACCEPTED:
            rejected = self._row_errors(reply, bodies) if bulk else 0
            self.spool.delete(ids)
            self._answered(len(ids) - rejected, rejected)
            return 0.0
        if verdict in (Verdict.INVALID, Verdict.TOO_LARGE):
            if bulk:  # one bad row must not sink the rest: split until the culprit goes alone
                half = len(rows) // 2
                return self._post(rows[:half], stop) or self._post(rows[half:], stop)
            self._invalid(reply, bodies[0])
            self.spool.delete(ids)
            self._answered(0, 1)
            return 0.0
        self.accepting = False
        self.failures += 1
        if verdict in (Verdict.REFUSED, Verdict.MISROUTED):
            self._say_config(verdict, reply)
            # `spool flush` (same key, maybe a corrected URL) may take them at once; never another key
            self.spool.release()
            return self.policy.cap
        if verdict is Verdict.THROTTLED:
            logger.debug("respan_instrument: Respan is rate limiting (%s)", reply.describe())
        elif "outage" not in self._said:
            self._said.add("outage")
            logger.warning(
                "respan_instrument: Respan did not accept logs (%s); they are kept in %s and retried "
                "with backoff",
                reply.describe(),
                self.spool.place,
            )
        return self.policy.delay(self.failures, reply)

    def _answered(self, delivered: int, rejected: int) -> None:
        if not self.accepting and "outage" in self._said:
            logger.info("respan_instrument: Respan accepts logs again; delivering the spool")
        self._said.discard("outage")
        self.accepting = True
        self.failures = 0
        self.delivered += delivered
        self.rejected += rejected

    def _say_config(self, verdict: Verdict, reply: Reply) -> None:
        if verdict.value in self._said:
            return
        self._said.add(verdict.value)
        if verdict is Verdict.REFUSED:
            logger.error(
                "respan_instrument: Respan refused the API key (HTTP %s). Set a valid key in "
                "RESPAN_API_KEY or instrument(api_key=...). Calls carry on; their logs are kept in "
                "%s for this key: a log is only ever sent with the key it was made under, so they "
                "are delivered once Respan accepts this key (`respan-instrument spool flush` with it).",
                reply.status,
                self.spool.place,
            )
        else:
            logger.error(
                "respan_instrument: %s%s is not Respan's logging API (%s). Check RESPAN_BASE_URL "
                "(default https://api.respan.ai/api). Logs are kept in %s.",
                self.base,
                CREATE_PATH,
                reply.describe(),
                self.spool.place,
            )

    def _row_errors(self, reply: Reply, bodies: Sequence[bytes]) -> int:
        data = reply.json()
        if not isinstance(data, Mapping) or not data.get("error_count"):
            return 0
        try:
            count = min(int(data["error_count"]), len(bodies))
        except (TypeError, ValueError):
            return 0
        details, reasons = [], []
        for error in list(data.get("errors") or [])[:5]:
            index = error.get("index") if isinstance(error, Mapping) else None
            reason = str(error.get("error", error) if isinstance(error, Mapping) else error)[:200]
            where = (
                _describe_row(bodies[index]) if isinstance(index, int) and 0 <= index < len(bodies) else ""
            )
            details.append(f"{where}{reason}")
            reasons.append(reason)
        self.rejections.add(
            "; ".join(sorted(set(reasons))) or reply.describe(),
            count,
            "respan_instrument: Respan rejected %d of %d log(s) as invalid; they are not retried: %s",
            count,
            len(bodies),
            "; ".join(details) or reply.describe(),
        )
        return count

    def _invalid(self, reply: Reply, body: bytes) -> None:
        self.rejections.add(
            reply.describe(),
            1,
            "respan_instrument: Respan rejected a log as invalid; it is not retried: %s%s",
            _describe_row(body),
            reply.describe(),
        )


def _describe_row(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, Mapping):
        return ""
    keys = ("model", "span_unique_id", "custom_identifier")
    return "(" + ", ".join(f"{k}={data[k]!r}" for k in keys if k in data) + ") "


# live exporters, for the fork hooks below
_LIVE: weakref.WeakSet[Exporter] = weakref.WeakSet()
# what a forked child inherited: never closed or used there (the parent still owns it)
_INHERITED: list[object] = []


class Exporter:
    """Turns finished calls into request logs and delivers them to Respan, durably.

    `submit()` is the only method on the caller's hot path. `flush()` and `shutdown()` block,
    bounded by their timeout. Tuning knobs default from the environment (for tests):
    `RESPAN_SCHEDULE_DELAY`, `RESPAN_RETRY_BASE`, `RESPAN_RETRY_CAP`, `RESPAN_BULK_PER_MINUTE`.
    """

    # per process: _start() sets these afresh after a fork
    _owner: str
    _queue: collections.deque[Any]
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
    _unbuilt: int
    _overflow_seen: int
    _drops_seen: int
    _fork_locks: list[threading.Lock]
    _overflow_report: _DropReport
    _trim_report: _DropReport
    _unwritable_report: _DropReport
    _spool: Spool  # the sender's handle (and the one flush questions go to)
    _wspool: Spool  # the writer's handle: its own connection, no checkpoints
    _checkpointed: float
    _sender: Sender
    _courier: Courier
    _writer: threading.Thread
    _sending: threading.Thread

    def __init__(
        self,
        base_url: str,
        api_key: str,
        build: Callable[[Any], list[dict[str, Any]]],
        *,
        max_content_bytes: int = 1_000_000,
        spool_dir: str | None = None,
        spool_max_mb: int = 1024,
        max_queue: int = MAX_QUEUE,
        hard_queue: int = HARD_QUEUE,
        schedule_delay: float | None = None,
        retry_base: float | None = None,
        retry_cap: float | None = None,
        bulk_per_minute: float | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._read_timeout = read_timeout
        self._build = build
        self._max_content = max_content_bytes
        self._spool_dir = resolve_dir(spool_dir)
        self._spool_max = spool_max_mb * 1024 * 1024
        self._max_queue = max_queue
        self._hard_queue = max(max_queue, hard_queue)
        self._compacted = 0  # logs the caller encoded itself because the writer lagged
        self._lent = 0  # times a caller lent the GIL to the lagging writer
        self._late = 0  # logs submitted after shutdown (dropped, reported once)
        self._delay = schedule_delay or _env_number("RESPAN_SCHEDULE_DELAY", SCHEDULE_DELAY)
        self._policy = RetryPolicy(
            base=retry_base or _env_number("RESPAN_RETRY_BASE", 0.5),
            cap=retry_cap or _env_number("RESPAN_RETRY_CAP", 30.0),
        )
        self._per_minute = bulk_per_minute or _env_number("RESPAN_BULK_PER_MINUTE", BULK_PER_MINUTE)
        self._closed = False
        self._overflow = 0  # logs the hot path could not queue (caller threads only increment it)
        self._unbuilt_by_callers = 0  # logs a caller failed to encode in _compact (caller threads only)
        self._start()
        _LIVE.add(self)

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

    def _encode(self, item: Any) -> list[bytes]:
        """A call's record (or a log dict from log()) as the JSON Respan gets: none, one, or
        several logs (the results of a Batch output file)."""
        if isinstance(item, dict):
            return [encode_log(item, self._max_content)]
        return [encode_log(log, self._max_content) for log in self._build(item)]

    def _compact(self, item: Any) -> None:
        """The writer is far behind (starved of the GIL by busy application threads, seen for
        seconds at a time): keep the log, but as its encoded bytes, a sixth of a record's memory.
        The caller pays the building it would otherwise have left to the writer; no lock, no I/O."""
        try:
            bodies = self._encode(item)
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
        the spool at start-up) was accepted by Respan or, while Respan is not accepting, is
        safely in the spool. False on timeout, if logs were dropped since the previous flush,
        or while logs wait in memory only (no usable spool directory)."""
        if self._closed or not self._writer.is_alive():
            return not self._queue
        marker = _Marker()
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

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush within `timeout`, then stop. What was not delivered stays in the spool; with no
        usable spool directory it is lost, and counted on the logger."""
        if self._closed:
            return not self._queue
        deadline = time.monotonic() + timeout
        ok = self.flush(timeout)
        self._closed = True
        self._stopping = True
        self._stop.set()
        self._wake.set()
        self._kick.set()
        self._writer.join(max(0.05, deadline - time.monotonic()))
        self._sending.join(max(0.05, deadline - time.monotonic()))
        self._overflow_report.emit(self._hard_queue)
        self._trim_report.emit(self._spool.place, self._spool.max_bytes >> 20)
        self._unwritable_report.emit(self._spool.place, UNWRITTEN_MAX_BYTES >> 20)
        self._courier.rejections.emit()
        self._say_left_behind()
        if not self._writer.is_alive() and not self._sending.is_alive():
            try:  # hand what is left to the next process (or exporter) at once, not after a lease
                self._spool.release()
                self._wspool.close()
                self._spool.close()
            except Exception as exc:  # noqa: BLE001 - shutting down must not raise
                report("closing the spool", exc)
            self._sender.close()
        return ok

    def _say_left_behind(self) -> None:
        """Count on the logger what this process is about to lose: logs never written to a
        spool (still queued when the deadline came, or refused by it) and, with no usable spool
        directory, everything Respan has not accepted yet."""
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
                f"{in_memory} not accepted by Respan and kept in memory only (no usable spool "
                "directory; set RESPAN_SPOOL_DIR to a writable one)"
            )
        if unwritten:
            reasons.append(f"{unwritten} refused by {self._wspool.place}")
        if queued:
            reasons.append(f"{queued} not yet written to {self._wspool.place} by the exit deadline (RESPAN_EXIT_TIMEOUT)")
        if reasons:
            logger.warning(
                "respan_instrument: %d log(s) lost at exit: %s", in_memory + unwritten + queued, "; ".join(reasons)
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
        self._sturn = _Turn(self._kick)  # when the sender wants it
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
        self._spool = Spool(self._spool_dir, self._spool_max, self._owner, self._api_key)
        self._wspool = self._spool.twin()
        self._checkpointed = 0.0
        self._sender = Sender(self._base_url, self._api_key, self._read_timeout)
        self._courier = Courier(self._spool, self._sender, self._base_url, self._policy, self._per_minute)
        self._courier.progress = self._sturn.awake
        self._writer = threading.Thread(target=self._write_loop, name="respan-spool-writer", daemon=True)
        self._sending = threading.Thread(target=self._send_loop, name="respan-sender", daemon=True)
        self._writer.start()
        self._sending.start()

    def _write_loop(self) -> None:
        hold_signals()
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
        per call; measured at +80 µs of caller-thread CPU per call in a tight loop.
        """
        queue = self._queue
        if self._unwritten:
            self._write([])
        todo = len(queue)
        while todo > 0:
            bodies: list[bytes] = []
            size = 0
            marker = None
            while todo > 0 and len(bodies) < MAX_BATCH and size < MAX_BULK_BYTES:
                todo -= 1
                item = queue.popleft()
                if isinstance(item, _Marker):
                    marker = item
                    break
                if isinstance(item, bytes):  # encoded by the caller (see _compact)
                    encoded = [item]
                else:
                    try:
                        encoded = self._encode(item)
                    except Exception as exc:  # noqa: BLE001 - one bad record must not cost the others
                        report("building a request log", exc)
                        self._unbuilt += 1
                        continue
                bodies.extend(encoded)
                size += sum(len(body) for body in encoded)
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
            last, trimmed = self._wspool.append(self._base_url, batch)
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
        hold_signals()
        _suppress_our_tracing()
        self._ready.wait()
        courier = self._courier
        try:
            courier.start()
        except Exception as exc:  # noqa: BLE001 - reported; delivery goes on
            report("reading the spool", exc)
        self._retry_at = next_try = 0.0
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
                    turn.sleeping(next_try - now)
                    self._kick.wait(next_try - now)
                    self._kick.clear()
                    continue
                wait = courier.round(self._stop)
                self._resolve_markers()
                if wait is None:  # nothing to send: sleep until the writer has more
                    turn.sleeping(IDLE_POLL)
                    if not self._kick.wait(IDLE_POLL):  # quiet for a while: housekeeping
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

    def _resolve_markers(self) -> None:
        markers = self._markers
        courier = self._courier
        in_memory = self._spool.in_memory
        while markers:
            marker = markers[0]
            if marker.others_upto < 0:
                marker.others_upto = self._others_upto()
            if courier.accepting or in_memory:
                upto = max(courier.startup_max, marker.others_upto)
                pending = self._spool.known_pending(self._base_url, marker.upto, upto)
                if pending and courier.accepting:
                    return
                if pending:  # Respan is not accepting and there is no spool: not safe anywhere
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

    # ---- fork --------------------------------------------------------------------------
    def _before_fork(self) -> None:
        # no spool operation of ours may be half done in the child's copy of SQLite
        locks = {id(lock): lock for lock in (self._spool.lock, self._wspool.lock)}.values()
        self._fork_locks = [lock for lock in locks if lock.acquire(timeout=1.0)]

    def _after_fork_in_parent(self) -> None:
        locks, self._fork_locks = self._fork_locks, []
        for lock in reversed(locks):
            lock.release()

    def _after_fork_in_child(self) -> None:
        # the parent's threads, queue, connections and leases are not ours: start afresh
        _INHERITED.extend((self._spool, self._wspool, self._sender))
        if self._closed:
            return
        self._start()


def _before_fork() -> None:
    for exporter in list(_LIVE):
        exporter._before_fork()


def _after_fork_in_parent() -> None:
    for exporter in list(_LIVE):
        exporter._after_fork_in_parent()


def _after_fork_in_child() -> None:
    for exporter in list(_LIVE):
        try:
            exporter._after_fork_in_child()
        except Exception as exc:  # noqa: BLE001 - the child must go on
            report("restarting the exporter after fork", exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


def deliver_spool(
    base_url: str,
    api_key: str,
    spool_dir: str | None = None,
    *,
    timeout: float = 60.0,
    bulk_per_minute: float = BULK_PER_MINUTE,
    read_timeout: float = READ_TIMEOUT,
) -> dict[str, Any]:
    """Deliver what the spool holds for `base_url` and `api_key` now, in this thread
    (`respan-instrument spool flush`).

    Rows leased by a running process are left to it, rows of other keys to their owner. Transient failures are retried with
    backoff until `timeout`; a refused key or a wrong URL stops at once (the rows stay).

    Args:
        base_url: the Respan API root the logs are for (as in RESPAN_BASE_URL).
        api_key: the Respan API key to send them with.
        spool_dir: default `RESPAN_SPOOL_DIR`, else the per-user cache directory.
        timeout: seconds to keep trying.
        bulk_per_minute: bulk requests per minute to stay under (Respan allows 30 per organisation).
        read_timeout: seconds to wait for Respan's answer to one request (RESPAN_TIMEOUT).

    Returns:
        `delivered` and `rejected` (invalid rows, reported on the `respan_instrument` logger and
        removed) counts, `remaining` (rows still spooled for `base_url` that this key delivers:
        its own and those of unknown key; rows of other keys are never sent with it),
        `outcome` (`done`, `refused` (bad key), `misrouted` (bad URL), `unreachable`,
        `throttled` or `timeout`), and `path` (the spool file used; None when no spool
        directory was usable).
    """
    base = base_url.rstrip("/")
    policy = RetryPolicy(_env_number("RESPAN_RETRY_BASE", 0.5), _env_number("RESPAN_RETRY_CAP", 30.0))
    spool = Spool(spool_dir, 1 << 62, owner_token(), api_key)
    sender = Sender(base, api_key, read_timeout)
    courier = Courier(spool, sender, base, policy, bulk_per_minute)
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    outcome = "timeout"
    spool.open()
    try:
        courier.start()
        while True:
            wait = courier.round(stop)
            if wait is None:
                outcome = "done"
                break
            if courier.last in (Verdict.REFUSED, Verdict.MISROUTED):
                outcome = courier.last.value
                break
            if time.monotonic() + wait > deadline:
                if courier.last is Verdict.RETRY and not courier.accepting:
                    outcome = "unreachable"
                elif courier.last is Verdict.THROTTLED and not courier.accepting:
                    outcome = "throttled"
                break
            if wait:
                time.sleep(wait)
        return {
            "delivered": courier.delivered,
            "rejected": courier.rejected,
            "remaining": spool.count(base),
            "outcome": outcome,
            "path": None if spool.in_memory else spool.path,
        }
    finally:
        spool.release()
        spool.close()
        sender.close()


__all__ = ["Courier", "Exporter", "deliver_spool"]
