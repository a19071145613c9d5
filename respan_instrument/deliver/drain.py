"""Delivering the spool now, in this thread: `respan-instrument spool flush`."""

from __future__ import annotations

import threading
import time
from typing import Any

from .destination import Destination
from .http import RetryPolicy, Verdict
from .posting import Poster
from .respan import BULK_PER_MINUTE, RespanLogs
from .spool import Spool, owner_token


def deliver_spool(
    base_url: str,
    api_key: str,
    spool_dir: str,
    *,
    read_timeout: float,
    fallback_dir: str | None = None,
    timeout: float = 60.0,
    bulk_per_minute: float = BULK_PER_MINUTE,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Deliver what the spool holds for `base_url` and `api_key` now, in this thread
    (`respan-instrument spool flush`).

    Rows leased by a running process are left to it, rows of other keys to their owner.
    Transient failures are retried with backoff until `timeout`; a refused key or a wrong URL
    stops at once (the rows stay).

    Args:
        base_url: the Respan API root the logs are for (as in RESPAN_BASE_URL).
        api_key: the Respan API key to send them with.
        spool_dir: the spool directory (`_spool_dirs.resolve_dir()`).
        fallback_dir: tried when `spool_dir` cannot be used (`_spool_dirs.fallback_dir()`).
        timeout: seconds to keep trying.
        bulk_per_minute: bulk requests per minute to stay under (Respan allows 30 per organisation).
        read_timeout: seconds to wait for Respan's answer to one request (RESPAN_TIMEOUT).
        retry: the backoff between tries (RESPAN_RETRY_BASE, RESPAN_RETRY_CAP); default
            `http.RETRY_BASE` doubling up to `http.RETRY_CAP`.

    Returns:
        `delivered` and `rejected` (invalid rows, reported on the `respan_instrument` logger and
        removed) counts, `remaining` (rows still spooled for `base_url` that this key delivers:
        its own and those of unknown key; rows of other keys are never sent with it),
        `outcome` (`done`, `refused` (bad key), `misrouted` (bad URL), `unreachable`,
        `throttled` or `timeout`), and `path` (the spool file used; None when no spool
        directory was usable).
    """
    destination = RespanLogs(base_url, api_key, per_minute=bulk_per_minute, read_timeout=read_timeout)
    spool = Spool(spool_dir, 1 << 62, owner_token(), destination.key, fallback_dir)
    return drain(destination, spool, timeout, retry or RetryPolicy())


def drain(destination: Destination, spool: Spool, timeout: float, policy: RetryPolicy) -> dict[str, Any]:
    """Deliver what `spool` (a handle for the destination's key, not open yet) holds for
    `destination` (its route and key), in this thread, until it is empty, the destination
    refuses the key or route, or `timeout`; both are closed after. Returns what
    `deliver_spool()` does."""
    base = destination.route
    poster = Poster(spool, destination, policy)
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    outcome = "timeout"
    spool.open()
    try:
        poster.start()
        while True:
            wait = poster.round(stop)
            if wait is None:
                outcome = "done"
                break
            if poster.last in (Verdict.REFUSED, Verdict.MISROUTED):
                outcome = poster.last.value
                break
            if time.monotonic() + wait > deadline:
                if poster.last is Verdict.RETRY and not poster.accepting:
                    outcome = "unreachable"
                elif poster.last is Verdict.THROTTLED and not poster.accepting:
                    outcome = "throttled"
                break
            if wait:
                time.sleep(wait)
        return {
            "delivered": poster.delivered,
            "rejected": poster.rejected,
            "remaining": spool.count(base),
            "outcome": outcome,
            "path": None if spool.in_memory else spool.path,
        }
    finally:
        try:
            poster.forget_settled()  # before letting go: released, they would be sent again
            spool.release()
        finally:
            spool.close()
            destination.close()


__all__ = ["deliver_spool", "drain"]
