"""The record of one call, handed from the caller's thread to the background worker."""

from __future__ import annotations

from typing import Any, Mapping


class CallRecord:
    """References and scalars captured on the caller's thread; the payload is built later.

    `body` is the SDK's own transformed request dict (a fresh copy made per call by the SDK),
    so later changes to the caller's `messages` cannot reach it.
    """

    __slots__ = (
        "log_type",
        "body",
        "base_url",
        "start_ns",
        "end_ns",
        "response",
        "error",
        "trace_id",
        "span_id",
        "parent_id",
        "span_name",
        "attributes",
        "cost",
        "stream",
        "ttft_ns",
        "cut_short",
    )

    def __init__(
        self,
        log_type: str,
        body: Mapping[str, Any],
        base_url: str,
        start_ns: int,
        span_name: str,
        attributes: Mapping[str, Any],
    ) -> None:
        self.log_type = log_type
        self.body = body
        self.base_url = base_url
        self.start_ns = start_ns
        self.end_ns = start_ns
        self.response: Any = None
        self.error: BaseException | None = None
        self.trace_id = 0
        self.span_id = 0
        self.parent_id = 0
        self.span_name = span_name
        self.attributes = attributes
        self.cost: float | None = None
        self.stream = False
        self.ttft_ns: int | None = None
        self.cut_short = False
