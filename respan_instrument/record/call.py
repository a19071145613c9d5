"""The record of one call, handed from the caller's thread to the background worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CallRecord:
    """References and scalars captured on the caller's thread; the payload is built later.

    `body` is the SDK's own transformed request dict (a fresh copy made per call by the SDK,
    so later changes to the caller's `messages` cannot reach it) or, once a non-streamed call
    succeeded, the JSON bytes it was sent as; `response` likewise keeps the response's JSON
    bytes when there are some. Records wait for the writer for up to half a second: bytes are
    one object the garbage collector never scans, where a dict or model tree is dozens.
    """

    __slots__ = (
        "log_type",
        "body",
        "base_url",
        "start_ns",
        "span_name",
        "attributes",
        "end_ns",
        "response",
        "error",
        "trace_id",
        "span_id",
        "parent_id",
        "cost",
        "stream",
        "ttft_ns",
        "cut_short",
        "pending",
        "ctx",
        "price_provider",
    )

    def __init__(
        self,
        log_type: str,
        body: Any,
        base_url: str,
        start_ns: int,
        span_name: str,
        attributes: Mapping[str, Any],
    ) -> None:
        self.log_type = log_type
        self.body = body
        self.base_url = base_url
        self.start_ns = start_ns
        self.span_name = span_name
        self.attributes = attributes
        self.end_ns = 0
        self.response: Any = None
        self.error: BaseException | None = None
        self.trace_id = 0
        self.span_id = 0
        self.parent_id = 0
        self.cost: float | None = None
        self.stream = False
        self.ttft_ns: int | None = None
        self.cut_short = False
        # a lean call (see _patch.settle): the hooks the worker settles it with before building
        # its log, the OpenTelemetry context it started in, and its genai-prices provider
        self.pending: Any = None
        self.ctx: Any = None
        self.price_provider: str | None = None
