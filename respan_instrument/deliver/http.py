"""One small HTTP sender (POST to a destination's URL) and, kept apart from it, the retry policy."""

from __future__ import annotations

import enum
import importlib
import json
import random
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

from .._version import __version__

CONNECT_TIMEOUT = 5.0  # an unreachable host or proxy is known quickly; the logs wait in the spool
RETRY_BASE = 0.5  # seconds: the first backoff after a failed post ...
RETRY_CAP = 30.0  # ... doubling up to this

_USERINFO = re.compile(r"://[^/@\s]*@")


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

    def describe(self) -> str:
        """A short human form: `HTTP 503: {...}` or the connection error."""
        if self.status is None:
            return self.error or "no answer"
        text = self.body[:300].decode("utf-8", errors="replace").strip()
        return f"HTTP {self.status}: {text}" if text else f"HTTP {self.status}"


def http_library() -> Any:
    """httpx, or its twin httpx2 (same API) when that is what the process already has.

    openai 3.x brings httpx2 and no httpx: importing httpx next to it would cost instrument()
    ~20 ms (more than the rest of it). The module is imported here, on the thread that calls
    instrument(), never on our worker: openai looks for it in sys.modules and must not find
    it half-imported.
    """
    for name in ("httpx", "httpx2"):
        module = sys.modules.get(name)
        if module is not None:
            return module
    try:
        return importlib.import_module("httpx2")  # installed with genai-prices
    except ImportError:
        return importlib.import_module("httpx")


class Sender:
    """POSTs bodies (JSON unless told otherwise) under one URL root with keep-alive and a timeout. Never raises for I/O.

    The destination gives the headers (its authentication); the sender adds the content type
    and our User-Agent.

    The network is reached the way the openai SDK reaches it: through `HTTPS_PROXY`,
    `HTTP_PROXY` or `ALL_PROXY` unless `NO_PROXY` exempts the host, trusting the CAs of
    `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (the HTTP library's `trust_env`). Redirects are
    never followed, so the Authorization header goes to the destination's URL only; through a proxy to
    an https URL it travels inside the TLS tunnel, never in the CONNECT request.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        read_timeout: float,
        content_type: str = "application/json",
    ) -> None:
        # The client itself (TLS context, ~20 ms) is built by the sender thread on first use.
        self._httpx = http_library()
        self._base = base_url.rstrip("/")
        self._headers = dict(headers)
        self._content_type = content_type
        self._read_timeout = read_timeout
        self._client: Any = None

    def _connect(self) -> Any:
        httpx = self._httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(self._read_timeout, connect=min(self._read_timeout, CONNECT_TIMEOUT)),
            headers={
                **self._headers,
                "Content-Type": self._content_type,
                "User-Agent": f"respan-instrument/{__version__}",
            },
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
            follow_redirects=False,
            trust_env=True,
        )
        return self._client

    def post(self, path: str, body: bytes) -> Reply:
        client = self._client
        if client is None:
            try:
                client = self._connect()
            except Exception as exc:  # noqa: BLE001 - a bad proxy URL or CA file: kept, said, retried
                return Reply(None, b"", {}, _error("setting up HTTP from the proxy and CA environment", exc))
        try:
            response = client.post(self._base + path, content=body)
        except Exception as exc:  # noqa: BLE001 - refused, timeout, protocol error: all transient
            return Reply(None, b"", {}, _error("", exc))
        return Reply(response.status_code, response.content, dict(response.headers))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _error(doing: str, exc: Exception) -> str:
    """An exception as one line for our log, without the password of a proxy URL it may quote."""
    text = _USERINFO.sub("://***@", f"{type(exc).__name__}: {exc}")
    return f"{doing}: {text}" if doing else text


class Verdict(enum.Enum):
    """What an answer means for the logs that were sent."""

    ACCEPTED = "accepted"  # 200/201/202: remove from the spool
    RETRY = "retry"  # connection error, timeout, 408, 425, 5xx: back off, keep
    THROTTLED = "throttled"  # 429: wait what the destination asked, keep
    REFUSED = "refused"  # 401/403: bad key; keep for a process with a good one
    MISROUTED = "misrouted"  # 3xx/404/405: the base URL is wrong, not the log; keep
    TOO_LARGE = "too_large"  # 413: split a bulk; a single log is invalid
    INVALID = "invalid"  # other 4xx: the log(s) will never be accepted


class RetryPolicy:
    """Which answers are worth retrying, and how long to wait before the next try.

    `base` and `cap` shape a jittered `base * 2**n` backoff (n = failures in a row); a
    `retry_after` body field or `Retry-After` header is honoured as a floor.
    """

    ACCEPTED = frozenset({200, 201, 202})
    RETRYABLE = frozenset({408, 425, 500, 502, 503, 504})
    REFUSED = frozenset({401, 403})
    MISROUTED = frozenset({404, 405})

    def __init__(self, base: float = RETRY_BASE, cap: float = RETRY_CAP) -> None:
        self.base = base
        self.cap = cap

    def verdict(self, reply: Reply) -> Verdict:
        status = reply.status
        if status is None or status in self.RETRYABLE or status >= 500:
            return Verdict.RETRY
        if status in self.ACCEPTED:
            return Verdict.ACCEPTED
        if status == 429:
            return Verdict.THROTTLED
        if status in self.REFUSED:
            return Verdict.REFUSED
        if status == 413:
            return Verdict.TOO_LARGE
        if status in self.MISROUTED or status < 400:
            return Verdict.MISROUTED
        return Verdict.INVALID

    def delay(self, failures: int, reply: Reply | None = None) -> float:
        """Seconds to wait after `failures` failed tries in a row.

        Equal-jitter exponential backoff (half fixed, half random, so many processes do not
        retry in step and no retry comes immediately). When the destination said how long to wait
        (`retry_after` / `Retry-After`), that wins over the exponential part: sustained 429s
        are retried as often as it allows, never sooner.
        """
        asked = retry_after(reply) if reply is not None else None
        if asked is not None:
            floor = self.base / 2 + random.uniform(0, self.base / 2)
            return max(asked, floor) + random.uniform(0, 0.1 * asked)
        ceiling = min(self.cap, self.base * 2.0 ** min(max(failures - 1, 0), 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


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
