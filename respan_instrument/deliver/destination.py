"""What the pipeline needs from a place that takes logs: the seam a second destination plugs into.

The pipeline (queue, spool, poster) knows nothing of any destination's URL, authentication,
body format or rate limit; a destination knows nothing of threads, the spool or retries. The
poster asks a destination to post a batch of encoded rows and judges the answer with the
shared `RetryPolicy`; what a destination adds is what only it can say: which rows of an
accepted batch it turned down, and how to tell the user that its configuration is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from .http import Reply, Verdict


class RowErrors(NamedTuple):
    """Rows of an accepted batch that the destination turned down (never retried)."""

    rejected: int
    reason: str  # the same for repeats of one systematic rejection: they are summed
    details: str  # which rows and why, for the one warning that names them


class Encoder(Protocol):
    """How a destination makes its rows from what callers submit: a call's settled record, an
    Agents SDK span, or a `log()` dict. The wiring hands each destination its own (request logs
    as JSON, OTLP spans as protobuf); the pipeline never looks inside a row."""

    def encode(self, item: Any) -> list[bytes]:
        """The rows of one item (none, one, or several), on the writer thread."""
        ...

    def encode_on_caller(self, item: Any) -> list[bytes]:
        """The same on a caller's thread, when the writer lags far behind: no lock, no I/O,
        and no user code (a redactor's log goes without its content)."""
        ...


class Destination(Protocol):
    """One destination of logs, for one account.

    Rows in the spool are keyed by `route` and a fingerprint of `key`: a row is only ever
    posted to the route, with the key, it was made for.
    """

    encoder: Encoder | None  # its rows' making; None: it delivers rows spooled already (spool flush)

    name: str  # in log lines: "Respan rejected ..."
    route: str  # where its rows go (e.g. an API root URL)
    key: str | None  # the credential its rows are made under
    max_batch: int  # most rows in one post
    max_batch_bytes: int  # most bytes of rows in one post
    per_minute: float  # batched posts allowed per minute
    few: int  # with no batched post to spare, this many rows or fewer go one by one
    wire_timeout: float  # most seconds one post takes before it gives up (its connect and read timeouts)

    def post(self, rows: Sequence[bytes]) -> Reply:
        """Post encoded rows (one: alone; several: as one batch). Never raises for I/O."""
        ...

    def row_errors(self, reply: Reply, rows: Sequence[bytes]) -> RowErrors | None:
        """The rows an accepted batch answer says were turned down, if any."""
        ...

    def describe_row(self, row: bytes) -> str:
        """A short prefix naming a rejected row for the log (its model, ids), or ""."""
        ...

    def say_config(self, verdict: Verdict, reply: Reply, place: str) -> None:
        """Tell the user that the key (REFUSED) or route (MISROUTED) is wrong (the poster asks
        once per verdict); `place` is where the logs wait meanwhile."""
        ...

    def forked(self) -> Destination:
        """The same destination for a forked child, sharing no connection with the parent's."""
        ...

    def close(self) -> None:
        """Let go of connections."""
        ...


__all__ = ["Destination", "Encoder", "RowErrors"]
