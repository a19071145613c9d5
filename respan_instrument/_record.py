"""The record of one call, handed from the caller's thread to the background worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CallRecord:
    """References and scalars captured on the caller's thread; the payload is built later.

    `body` is the SDK's own transformed request dict (a fresh copy made per call by the SDK),
    so later changes to the caller's `messages` cannot reach it.
    """

    # defaults live on the class: the caller's thread assigns only what it knows at the start
    end_ns = 0
    response: Any = None
    error: BaseException | None = None
    trace_id = 0
    span_id = 0
    parent_id = 0
    cost: float | None = None
    stream = False
    ttft_ns: int | None = None
    cut_short = False

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
        self.span_name = span_name
        self.attributes = attributes
