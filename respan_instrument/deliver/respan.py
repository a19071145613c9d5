"""The Respan request-logs destination: its paths, authentication, batch body and answers.

Respan takes one log at `create/` and up to 500 at `bulk/` (as `{"logs": [...]}`), at most
30 bulk requests a minute per organisation. An accepted bulk answer may still list rows it
turned down (`error_count`, `errors[].index`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .._errors import logger
from .destination import Encoder, RowErrors
from .echo_scrub import Quoting
from .http import CONNECT_TIMEOUT, Reply, Sender, Verdict

CREATE_PATH = "/request-logs/create/"
BULK_PATH = "/request-logs/bulk/"
MAX_BATCH = 500  # Respan's bulk limit
MAX_BULK_BYTES = 8 * 1024 * 1024  # keep one request well under Respan's body limits
BULK_PER_MINUTE = 30  # Respan: bulk requests per minute per organisation
FEW = 5  # with no bulk request to spare, this many logs or fewer go one by one to create/


def join(encoded: Sequence[bytes]) -> bytes:
    """The body for `create/` (one log) or `bulk/` (several).

    Built in one allocation: a bulk body is hundreds of KB, and the two extra copies that
    wrapping a joined body took cost the sender ~0.35 ms a post in a running pipeline, and a
    fresh thread (whose allocator arena had to grow for them) ~1 ms and ~200 page faults."""
    if len(encoded) == 1:
        return encoded[0]
    if not encoded:
        return b'{"logs":[]}'
    return b",".join([b'{"logs":[' + encoded[0], *encoded[1:-1], encoded[-1] + b"]}"])


class RespanLogs:
    """Request logs for one Respan API root and key (a `Destination`)."""

    name = "Respan"
    max_batch = MAX_BATCH
    max_batch_bytes = MAX_BULK_BYTES
    few = FEW

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        encoder: Encoder | None = None,
        per_minute: float = BULK_PER_MINUTE,
        read_timeout: float,
    ) -> None:
        """`encoder`: makes request logs (JSON) of calls' records; none for `spool flush`.
        `read_timeout`: seconds to wait for an answer (the settings' RESPAN_TIMEOUT)."""
        self.encoder = encoder
        self.route = base_url.rstrip("/")
        self.key: str | None = api_key
        self.per_minute = per_minute
        self._api_key = api_key
        self._read_timeout = read_timeout
        self.wire_timeout = CONNECT_TIMEOUT + read_timeout
        self.sender = Sender(self.route, {"Authorization": f"Bearer {api_key}"}, read_timeout)

    def post(self, rows: Sequence[bytes]) -> Reply:
        return self.sender.post(BULK_PATH if len(rows) > 1 else CREATE_PATH, join(rows))

    def row_errors(self, reply: Reply, rows: Sequence[bytes]) -> RowErrors | None:
        data = reply.json()
        if not isinstance(data, Mapping) or not data.get("error_count"):
            return None
        try:
            count = min(int(data["error_count"]), len(rows))
        except (TypeError, ValueError):
            return None
        details, reasons = [], []
        quoting = Quoting(rows)
        for error in list(data.get("errors") or [])[:5]:
            index = error.get("index") if isinstance(error, Mapping) else None
            reason = quoting.text(
                str(error.get("error", error) if isinstance(error, Mapping) else error)[:200]
            )
            where = (
                self.describe_row(rows[index]) if isinstance(index, int) and 0 <= index < len(rows) else ""
            )
            details.append(f"{where}{reason}")
            reasons.append(reason)
        if not details:  # no row named: the answer itself says what was wrong
            quoted = quoting.reply(reply).describe()
            return RowErrors(count, quoted, quoted)
        return RowErrors(count, "; ".join(sorted(set(reasons))), "; ".join(details))

    def describe_row(self, row: bytes) -> str:
        try:
            data = json.loads(row)
        except ValueError:
            return ""
        if not isinstance(data, Mapping):
            return ""
        keys = ("model", "span_unique_id", "custom_identifier")
        return "(" + ", ".join(f"{k}={data[k]!r}" for k in keys if k in data) + ") "

    def say_config(self, verdict: Verdict, reply: Reply, place: str) -> None:
        if verdict is Verdict.REFUSED:
            logger.error(
                "respan_instrument: Respan refused the API key (HTTP %s). Set a valid key in "
                "RESPAN_API_KEY or instrument(api_key=...). Calls carry on; their logs are kept in "
                "%s for this key: a log is only ever sent with the key it was made under, so they "
                "are delivered once Respan accepts this key (`respan-instrument spool flush` with it).",
                reply.status,
                place,
            )
        else:
            logger.error(
                "respan_instrument: %s%s is not Respan's logging API (%s). Check RESPAN_BASE_URL "
                "(default https://api.respan.ai/api). Logs are kept in %s.",
                self.route,
                CREATE_PATH,
                reply.describe(),
                place,
            )

    def forked(self) -> RespanLogs:
        return RespanLogs(
            self.route,
            self._api_key,
            encoder=self.encoder,
            per_minute=self.per_minute,
            read_timeout=self._read_timeout,
        )

    def close(self) -> None:
        self.sender.close()


__all__ = ["BULK_PATH", "BULK_PER_MINUTE", "CREATE_PATH", "RespanLogs", "join"]
