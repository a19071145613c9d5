"""Settle a finished call on the worker: what its caller's thread left undone, once.

A call that nobody watched as it ran (no span, no metrics: a lean call) hands over only
references; its trace ids, default attributes, usage and cost are worked out here, off the
caller's thread. Every call's kept JSON is parsed here, and a lean stream's events replayed, so
the log builder parses nothing again.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import _context
from ..endpoints.base import Prices
from .call import CallRecord
from .replay import replay


def ids(ctx: otel_context.Context | None) -> tuple[int, int, int]:
    """(trace id, span id, parent span id or 0) for a call with no span: fresh W3C ids, in the
    trace of the span current in `ctx` when there is one."""
    if ctx:  # (the empty context, the usual one, has no span)
        parent = trace.get_current_span(ctx).get_span_context()
        if parent.is_valid:
            return parent.trace_id, random.getrandbits(64), parent.span_id
    return random.getrandbits(128), random.getrandbits(64), 0


def _json_or(data: bytes, default: Any) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return default


def settle(record: CallRecord, prices: Prices, defaults: Mapping[str, Any]) -> None:
    """Everything the log needs that the record does not hold yet, worked out once."""
    if record.request_json is not None:
        record.request = _json_or(record.request_json, {})
        record.request_json = None
    if record.response_json is not None:
        record.response = _json_or(record.response_json, None)
        record.response_json = None
    events, record.events = record.events, None
    if events is not None:
        replay(record, events)
    if record.settled:
        return
    record.settled = True
    ctx, record.ctx = record.ctx, None
    record.trace_id, record.span_id, record.parent_id = ids(ctx)
    if defaults:
        scope = record.attributes
        record.attributes = _context.merge(defaults, scope) if scope else defaults
    if record.error is not None or record.response is None:
        return
    endpoint = record.endpoint
    _, usage, model, tier = endpoint.outcome(record.response, False)
    record.usage = usage
    if usage is not None:
        requested = record.request.get("model") if isinstance(record.request, Mapping) else None
        record.cost = endpoint.price(prices, model or requested or "", usage, record.price_provider, tier)
