"""The poster: claim rows from the spool, post them to a destination, delete or release them.

Everything here is the same for any destination: the token bucket that keeps batched posts
within its rate limit (and sends a few rows one by one when no batch is to spare), splitting a
batch the destination turned down until the culprit goes alone, backoff, and the reports of
rejected rows. What the destination adds (its body format, paths, key, row errors) comes
through `Destination`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from .._errors import logger, report
from .destination import Destination
from .echo_scrub import Quoting
from .http import Reply, RetryPolicy, Verdict, retry_after
from .spool import LEGACY_FP, Spool

REPORT_EVERY = 10.0  # seconds between warnings about dropped logs (counts accumulate)
WIRE_MAX = 0.05  # most a post is said to need no GIL: past it, callers hand it over again


def _nothing() -> None:
    pass


def _waiting(seconds: float) -> None:
    pass


class _Bucket:
    """Token bucket for a destination's batch rate limit: never more than `per_minute` in any minute."""

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

    def __init__(self, name: str) -> None:
        self.name = name
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
                    "respan_instrument: %s rejected %d more log(s) as invalid; they are not retried: %s",
                    self.name,
                    count,
                    reason,
                )
            self.last = now


class Poster:
    """Delivers spooled rows to one destination: batching, rate limit, verdicts, row errors.

    Not a thread: `round()` does one claim-and-post and says when to come back. The pipeline's
    sender thread and `deliver_spool()` both drive it.
    """

    def __init__(self, spool: Spool, destination: Destination, policy: RetryPolicy) -> None:
        self.spool = spool
        self.destination = destination
        self.base = destination.route
        self.policy = policy
        self.bucket = _Bucket(destination.per_minute)
        self.accepting = True  # the destination's last answer was an acceptance (or none yet)
        self.failures = 0  # failed tries in a row
        self.tries = 0  # rounds that posted, or found nothing to post: what a flush waits for
        self.asked_until = 0.0  # the destination asked for no post before then (monotonic)
        self.last: Verdict | None = None
        self.delivered = 0
        self.rejected = 0
        self.startup_max = 0
        self.claimed_upto = 0  # highest id of the last claim when it took all there was (else 0)
        self.claimed_max = 0  # highest id any claim took (claims take the oldest rows first)
        self.rejections = _Rejections(destination.name)
        self._said: set[str] = set()
        self.progress: Callable[[], None] = _nothing  # called after each spool or network step
        # before a post: for how many seconds its thread will not need the GIL (see turns.py)
        self.on_the_wire: Callable[[float], None] = _waiting
        self.post_seconds = 0.0  # a post's wall time per log, averaged over the last few
        self.posting_since = 0.0  # when the post on the wire (or whose answer is not yet settled) began
        # rows whose answer settled them (accepted, or rejected for good) but whose delete the
        # spool refused (locked past its busy timeout): never posted again, deleted first
        self.settled: set[int] = set()

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
                "respan_instrument: %d log(s) in %s were made under another %s API key; they are "
                "left for a process with that key (see `respan-instrument spool status`; "
                "`respan-instrument spool flush` with that key delivers them)",
                foreign,
                spool.place,
                self.destination.name,
            )

    def round(self, stop: threading.Event) -> float | None:
        """Claim and post one batch: None when there is nothing to send, else seconds to wait
        before the next round (0: go on at once)."""
        if stop.is_set():  # stopping: what is not on the wire yet stays for the next process
            return None
        self.forget_settled()
        few, max_bytes = self.destination.few, self.destination.max_batch_bytes
        self.claimed_upto = 0
        if self.bucket.wait_time() > 0:
            waiting = self.spool.claimable(self.base, few + 1)
            if waiting == 0:
                self.tries += 1
                return None
            if waiting > few:  # worth a batched post: wait for one, letting the batch grow
                return self.bucket.wait_time()
            claimed = self.spool.claim(self.base, few, max_bytes)
            if claimed:  # (all of them leased anew, posted or not: never held rows again)
                self.claimed_max = max(self.claimed_max, claimed[-1][0])
            for row in claimed:
                wait = self._post([row], stop)
                if wait:
                    return wait
            return 0.0
        rows = self.spool.claim(self.base, self.destination.max_batch, max_bytes)
        self.progress()
        if not rows:
            self.tries += 1
            return None
        self.claimed_max = max(self.claimed_max, rows[-1][0])
        if len(rows) < self.destination.max_batch and sum(len(body) for _, body in rows) <= max_bytes // 2:
            self.claimed_upto = rows[-1][0]  # no limit cut this claim short: it took all there was
        return self._post(rows, stop)

    def post_held(self, rows: Sequence[tuple[int, bytes]], stop: threading.Event) -> float | None:
        """Post rows the writer spooled a moment ago, from memory (they are leased to us): like
        `round()`, without a claim that rewrites them and reads them back."""
        if stop.is_set():
            return None
        self.forget_settled()
        self.claimed_upto = 0  # what else the spool holds is not known: the next round claims
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
        started = time.monotonic()
        # said before the last look at `stop`: whoever sets `stop` and then finds no post on the
        # wire knows that none will start (a worker ending on SIGTERM lets go of its rows then)
        self.posting_since = started
        try:
            if stop.is_set():  # the rest of a split batch stays for the next process
                return 0.0
            self.on_the_wire(min(self.post_seconds * len(rows), WIRE_MAX))
            reply = self.destination.post(bodies)
            self.tries += 1
            self.post_seconds += ((time.monotonic() - started) / len(rows) - self.post_seconds) / 4
            self.progress()
            return self._settle(rows, ids, bodies, reply, stop)
        finally:
            self.posting_since = 0.0

    def _settle(
        self,
        rows: Sequence[tuple[int, bytes]],
        ids: list[int],
        bodies: list[bytes],
        reply: Reply,
        stop: threading.Event,
    ) -> float:
        """The answer to a post: delete what was accepted (or rejected for good), keep the rest."""
        bulk = len(rows) > 1
        verdict = self.last = self.policy.verdict(reply)
        if verdict is Verdict.ACCEPTED:
            rejected = self._row_errors(reply, bodies) if bulk else 0
            self._forget(ids)
            self._answered(len(ids) - rejected, rejected)
            return 0.0
        if verdict in (Verdict.INVALID, Verdict.TOO_LARGE):
            if bulk:  # one bad row must not sink the rest: split until the culprit goes alone
                half = len(rows) // 2
                return self._post(rows[:half], stop) or self._post(rows[half:], stop)
            self._invalid(Quoting(bodies).reply(reply), bodies[0])
            self._forget(ids)
            self._answered(0, 1)
            return 0.0
        self.accepting = False
        self.failures += 1
        asked = retry_after(reply)
        self.asked_until = 0.0 if asked is None else time.monotonic() + asked
        if verdict in (Verdict.REFUSED, Verdict.MISROUTED):
            self._say_config(verdict, reply, bodies)
            # `spool flush` (same key, maybe a corrected URL) may take them at once; never another key
            self.spool.release()
            return self.policy.cap
        if verdict is Verdict.THROTTLED:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "respan_instrument: %s is rate limiting (%s)",
                    self.destination.name,
                    Quoting(bodies).reply(reply).describe(),
                )
        elif "outage" not in self._said:
            self._said.add("outage")
            logger.warning(
                "respan_instrument: %s did not accept logs (%s); they are kept in %s and retried "
                "with backoff",
                self.destination.name,
                Quoting(bodies).reply(reply).describe(),
                self.spool.place,
            )
        return self.policy.delay(self.failures, reply)

    def _forget(self, ids: list[int]) -> None:
        """Delete rows the destination settled. Until the delete goes through they stay in
        `settled`: still ours in the spool, and claimable by us, they would be sent again."""
        self.settled.update(ids)
        try:
            self.forget_settled()
        except Exception as exc:  # noqa: BLE001 - retried before the next claim (see round)
            report("deleting delivered logs from the spool", exc)

    def forget_settled(self) -> None:
        """Delete the settled rows a delete missed; raises while the spool refuses it. Called
        before each claim, and before our rows are let go of (another process would send them)."""
        if self.settled:
            ids = sorted(self.settled)
            self.spool.delete(ids)
            self.settled.difference_update(ids)

    def _answered(self, delivered: int, rejected: int) -> None:
        if not self.accepting and "outage" in self._said:
            logger.info(
                "respan_instrument: %s accepts logs again; delivering the spool", self.destination.name
            )
        self._said.discard("outage")
        self.accepting = True
        self.failures = 0
        self.asked_until = 0.0
        self.delivered += delivered
        self.rejected += rejected

    def _say_config(self, verdict: Verdict, reply: Reply, bodies: Sequence[bytes]) -> None:
        if verdict.value not in self._said:
            self._said.add(verdict.value)
            self.destination.say_config(verdict, Quoting(bodies).reply(reply), self.spool.place)

    def _row_errors(self, reply: Reply, bodies: Sequence[bytes]) -> int:
        found = self.destination.row_errors(reply, bodies)
        if found is None:
            return 0
        self.rejections.add(
            found.reason,
            found.rejected,
            "respan_instrument: %s rejected %d of %d log(s) as invalid; they are not retried: %s",
            self.destination.name,
            found.rejected,
            len(bodies),
            found.details,
        )
        return found.rejected

    def _invalid(self, reply: Reply, body: bytes) -> None:
        """`reply` scrubbed already: nothing of `body` is quoted."""
        self.rejections.add(
            reply.describe(),
            1,
            "respan_instrument: %s rejected a log as invalid; it is not retried: %s%s",
            self.destination.name,
            self.destination.describe_row(body),
            reply.describe(),
        )


__all__ = ["Poster", "REPORT_EVERY"]
