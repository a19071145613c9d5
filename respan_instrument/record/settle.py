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
from ..endpoints.base import Prices, get
from . import fastjson
from .call_record import CallRecord
from .cost import settle_cost
from .replay import replay
from .worker_memory import WorkerMemory


def ids(ctx: otel_context.Context | None) -> tuple[int, int, int]:
    """(trace id, span id, parent span id or 0) for a call with no span: fresh W3C ids, in the
    trace of the span current in `ctx` when there is one."""
    if ctx:  # (the empty context, the usual one, has no span)
        parent = trace.get_current_span(ctx).get_span_context()
        if parent.is_valid:
            return parent.trace_id, random.getrandbits(64), parent.span_id
    return random.getrandbits(128), random.getrandbits(64), 0


_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # (untyped in typeshed)
_WHITESPACE = " \t\n\r"


def _json_or(data: bytes, default: Any) -> Any:
    """`json.loads(data)`, else `default`.

    Kept bodies start with `{`, so `json.loads` would read them as UTF-8 (unless the second byte
    is 0: UTF-16/32). orjson reads UTF-8 fastest; what it declines (see `fastjson`) is decoded
    here and handed to the C scanner directly, skipping its encoding detection and argument
    checks.
    """
    value = fastjson.loads(data)
    if value is not fastjson.DECLINED:
        return value
    if len(data) > 1 and data[1]:
        try:
            text = data.decode("utf-8", "surrogatepass")
            value, end = _scan(text, 0)
            if end == len(text) or not text[end:].strip(_WHITESPACE):
                return value
        except (ValueError, StopIteration):
            pass
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
    settle_cost(record, record.response, prices, False)


def first_finished(record: CallRecord, seen: WorkerMemory) -> bool:
    """A background response is logged once, when a call first sees it in a terminal status;
    its log shows the request it was created with, when this process created it."""
    endpoint = record.endpoint
    response = record.response
    if record.error is not None:
        return not endpoint.polls  # a failed poll is no model call; a failed create is
    response_id = get(response, "id")
    if not isinstance(response_id, str):
        return True
    if get(response, "status") not in endpoint.terminal_statuses:
        if not endpoint.polls:
            seen.created_with.put(response_id, record.request)
        return False
    if response_id in seen.logged_responses:
        return False
    seen.logged_responses.put(response_id, True)
    created_with = seen.created_with.get(response_id)
    if endpoint.polls:
        if created_with is not None:
            record.request = created_with
        record.span_name = f"{endpoint.operation} {get(response, 'model') or record.request.get('model')}"
    created, done = get(response, "created_at"), get(response, "completed_at")
    if isinstance(created, (int, float)) and 0 < created * 1e9 <= record.end_ns:
        record.start_ns = int(created * 1e9)
        if isinstance(done, (int, float)) and created <= done and done * 1e9 <= record.end_ns:
            record.end_ns = int(done * 1e9)
    return True


def add_thread(record: CallRecord, seen: WorkerMemory) -> None:
    """The conversation, or the first response of a `previous_response_id` chain, is the log's
    thread unless `attributes()` named one."""
    conversation, previous = record.endpoint.thread(record.request, record.response)
    if conversation is None and previous is None:
        return
    response_id = get(record.response, "id") if record.response is not None else None
    thread = conversation or seen.root_of(response_id if isinstance(response_id, str) else None, previous)
    if thread and not record.attributes.get("thread_identifier"):
        record.attributes = {**record.attributes, "thread_identifier": thread}
