"""The record of one call, handed from the caller's thread to the worker, and what a lean stream
hands over with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..endpoints import Endpoint
from ..endpoints.base import FilePart
from ..endpoints.usage import TokenUsage
from .anchors import Anchor
from .replay import Tapped

if TYPE_CHECKING:
    from opentelemetry.context import Context


class CallRecord:
    """References and scalars captured on the caller's thread; the log is built later.

    The request and the response are each kept in the cheapest form that still has what the log
    needs: the JSON bytes they crossed the wire as when there are some (one object the garbage
    collector never scans, where a dict or model tree is dozens, and records wait up to half a
    second for the worker), else the SDK's request dict (a fresh copy per call, so later changes
    to the caller's `messages` cannot reach it) and a response-shaped object (an SDK model, a
    stream's accumulator, an endpoint's summary). A lean stream's events wait in `events`.
    `settle()` turns all of them into `request` and `response`.

    `settled` says whether usage, cost, ids and default attributes were worked out already (on
    the caller's thread, when a span or a metric needed them there) or are left to the worker.
    """

    __slots__ = (
        "endpoint",
        "request",
        "request_json",
        "files",
        "base_url",
        "start_ns",
        "span_name",
        "attributes",
        "end_ns",
        "response",
        "response_json",
        "events",
        "error",
        "trace_id",
        "span_id",
        "parent_id",
        "usage",
        "cost",
        "cost_breakdown",
        "cost_unpriced",
        "settled",
        "stream",
        "ttft_ns",
        "cut_short",
        "ctx",
        "price_provider",
        "provider",
        "anchor",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        request: Mapping[str, Any],
        base_url: str,
        start_ns: int,
        span_name: str,
        attributes: Mapping[str, Any],
    ) -> None:
        self.endpoint = endpoint
        self.request = request
        self.request_json: bytes | None = None
        self.files: tuple[FilePart, ...] = ()
        self.base_url = base_url
        self.start_ns = start_ns
        self.span_name = span_name
        self.attributes = attributes
        self.end_ns = 0
        self.response: Any = None
        self.response_json: bytes | None = None
        self.events: Tapped | None = None
        self.error: BaseException | None = None
        self.trace_id = 0
        self.span_id = 0
        self.parent_id = 0
        self.usage: TokenUsage | None = None
        self.cost: float | None = None
        self.cost_breakdown: dict[str, float] | None = None  # USD per line, for a bill of lines
        self.cost_unpriced: dict[str, Any] | None = None  # the lines no price source prices
        self.settled = False
        self.stream = False
        self.ttft_ns: int | None = None
        self.cut_short = False
        # for the worker to settle a lean call: the context it started in, its prices' provider
        self.ctx: Context | None = None
        self.price_provider: str | None = None
        self.provider = "openai"  # gen_ai.provider.name
        # made inside an OpenAI Agents SDK run: where its log hangs in the run's trace
        self.anchor: Anchor | None = None
