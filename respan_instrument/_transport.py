"""One small sender (POST to Respan) and, kept apart from it, the retry policy."""

from __future__ import annotations

import json
import random
from email.utils import parsedate_to_datetime
from typing import Any, Mapping, NamedTuple
from datetime import datetime, timezone

from ._version import __version__

CREATE_PATH = "/request-logs/create/"
BULK_PATH = "/request-logs/bulk/"


class Reply(NamedTuple):
    """What came back: an HTTP status and body, or (status None) the connection error."""

    status: int | None
    body: bytes
    headers: Mapping[str, str]
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.status in (200, 201, 202)


class Sender:
    """POSTs JSON bodies to Respan with keep-alive and a timeout. Never raises for I/O."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        # Imported here, on the thread that calls instrument(), never on our worker: openai 3.x
        # looks for `httpx` in sys.modules and must not find a half-imported module.
        import httpx

        self._base = base_url.rstrip("/")
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "User-Agent": f"respan-instrument/{__version__}",
            },
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
            follow_redirects=False,
            trust_env=False,
        )

    def post(self, path: str, body: bytes) -> Reply:
        try:
            response = self._client.post(self._base + path, content=body)
        except Exception as exc:  # connection refused, timeout, protocol error: all transient
            return Reply(None, b"", {}, f"{type(exc).__name__}: {exc}")
        return Reply(response.status_code, response.content, dict(response.headers))

    def close(self) -> None:
        self._client.close()


class RetryPolicy:
    """Which answers are worth retrying, and how long to wait before the next try."""

    RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __init__(self, base: float = 0.5, cap: float = 30.0, max_attempts: int = 6) -> None:
        self.base = base
        self.cap = cap
        self.max_attempts = max_attempts

    def retryable(self, reply: Reply) -> bool:
        return reply.status is None or reply.status in self.RETRYABLE or reply.status >= 500

    def delay(self, attempt: int, reply: Reply) -> float:
        """Full-jitter exponential backoff, never shorter than what Respan asked for."""
        backoff = random.uniform(0, min(self.cap, self.base * 2**attempt))
        asked = retry_after(reply)
        return max(backoff, asked) if asked is not None else backoff


def retry_after(reply: Reply) -> float | None:
    """Seconds from a `retry_after` body field or a `Retry-After` header (seconds or date)."""
    body = reply.json()
    if isinstance(body, Mapping):
        value = body.get("retry_after")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(min(value, 3600))
    header = next((v for k, v in reply.headers.items() if k.lower() == "retry-after"), None)
    if header is None:
        return None
    try:
        return float(min(max(float(header), 0.0), 3600))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return float(min(max((when - datetime.now(timezone.utc)).total_seconds(), 0.0), 3600))
