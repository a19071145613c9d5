"""Realtime sessions: each model response of a `realtime.connect()` connection as one call.

Every major of the SDK that has realtime reads each message through the connection's
`recv_bytes()` (`recv()`, iteration and `dispatch_events()` all go through it; an app may call it
directly and parse the bytes itself) and sends each event through its `send()` (the resources'
helpers call it too). Wrapping those two methods, sync and async, GA and beta, sees every message
exactly once and changes none: the wrappers look, then return what the SDK returned or re-raise
what it raised.

The work per event on the app's loop is kept to a substring test on the message's first bytes
for the many deltas (audio deltas are never parsed, never kept); only the few events that shape
a log (session, conversation items, transcripts, `response.created` / `response.done`) are
parsed. A response's log is built from its `response.done`, which holds its text, transcripts
and tool calls; the deltas are kept only to log a response cut short with what arrived.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry import trace

from .. import _context
from .._errors import contained
from .._semconv import COST, RESPONSE_TIME_TO_FIRST_CHUNK, TTFT
from ..endpoints.base import Priced, get
from ..endpoints.realtime import REALTIME, message_of
from ..record.call import CallRecord
from ..record.settle import ids
from . import span as _span
from .call import Hooks
from .stream import OnDrop

_KEY = "_respan_realtime"  # the session's state, in the connection's __dict__
_HEAD = 96  # bytes of a message that hold its type, whichever key the server writes first
_IN_SESSION_EVENT = contained("reading a realtime event")
_IN_FINISHING = contained("logging a realtime response")
_IN_OPENING = contained("opening a realtime session")
_SKIPPED_SENT = frozenset({"input_audio_buffer.append", "input_audio_buffer.clear", "response.cancel"})
_ITEM_EVENTS = frozenset(
    {"conversation.item.created", "conversation.item.added", "conversation.item.done", "conversation.item.retrieved"}
)
# the only events parsed on the app's thread: those that shape a log
_PARSED = (b'"session.', b'"conversation.item.', b'"response.created"', b'"response.done"')
_hooks: Hooks | None = None
_scope = _context.current_reader()


class Target(NamedTuple):
    module: str
    name: str
    wrapper: Any


def set_hooks(hooks: Hooks | None) -> None:
    global _hooks
    _hooks = hooks


def _lean_item(item: Any) -> dict[str, Any]:
    """What a log needs of a conversation item: never an audio part's bytes."""
    kept = {k: item.get(k) for k in ("id", "type", "role", "call_id", "name", "arguments", "output") if k in item}
    parts = item.get("content")
    if isinstance(parts, list):
        kept["content"] = [
            {k: p.get(k) for k in ("type", "text", "transcript") if k in p} for p in parts if isinstance(p, dict)
        ]
    return kept


class _Response:
    """One response in flight."""

    __slots__ = ("start_ns", "ttft_ns", "deltas", "id")

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.ttft_ns: int | None = None
        self.deltas: list[bytes] = []  # text, transcript and arguments deltas, for a cut-short log
        self.id: str | None = None


class Session:
    """A connection's state. It holds no reference to the connection (the connection holds it),
    so a dropped connection is freed at once and its finalizer logs what was in flight."""

    __slots__ = ("hooks", "ctx", "scope", "session_id", "model", "items", "current", "__weakref__")

    def __init__(self, hooks: Hooks, ctx: Any, scope: Mapping[str, Any]) -> None:
        self.hooks = hooks
        self.ctx = ctx
        self.scope = scope
        self.session_id: str | None = None
        self.model: str | None = None
        self.items: dict[str, dict[str, Any]] = {}
        self.current: _Response | None = None

    # ---- the app's thread / loop -----------------------------------------------------------
    def received(self, data: Any) -> None:
        if type(data) is not bytes:
            if not isinstance(data, str):
                return
            data = data.encode()
        head = data[:_HEAD]
        if b'delta"' in head:
            current = self.current
            if current is not None and b'"response.' in head:
                if current.ttft_ns is None:
                    current.ttft_ns = time.time_ns()
                if b"audio.delta" not in head:
                    current.deltas.append(data)
            return
        if not any(marker in head for marker in _PARSED):
            return
        with _IN_SESSION_EVENT:
            event = json.loads(data)
            if type(event) is dict:
                self._event(event)

    def sent(self, event: Any) -> None:
        kind = event.get("type") if type(event) is dict else getattr(event, "type", None)
        if kind in _SKIPPED_SENT:
            return
        with _IN_SESSION_EVENT:
            if kind == "response.create":
                if self.current is None:
                    self.current = _Response(time.time_ns())
            elif kind == "session.update":
                session = event.get("session") if type(event) is dict else getattr(event, "session", None)
                model = get(session, "model") if session is not None else None
                if isinstance(model, str):
                    self.model = model

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in _ITEM_EVENTS:
            item = event.get("item")
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self.items[item["id"]] = _lean_item(item)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._transcribed(event)
        elif kind == "conversation.item.deleted":
            self.items.pop(event.get("item_id"), None)  # type: ignore[arg-type]
        elif kind == "response.created":
            if self.current is None:  # the server started it (voice activity detection)
                self.current = _Response(time.time_ns())
            response = event.get("response")
            self.current.id = get(response, "id") if isinstance(response, dict) else None
        elif kind == "response.done":
            response = event.get("response")
            if isinstance(response, dict):
                self.finish(response, False)
        elif kind in ("session.created", "session.updated"):
            session = event.get("session")
            if isinstance(session, dict):
                if isinstance(session.get("id"), str):
                    self.session_id = session["id"]
                if isinstance(session.get("model"), str):
                    self.model = session["model"]

    def _transcribed(self, event: dict[str, Any]) -> None:
        item = self.items.get(event.get("item_id"))  # type: ignore[arg-type]
        index, transcript = event.get("content_index"), event.get("transcript")
        parts = item.get("content") if item is not None else None
        if isinstance(parts, list) and isinstance(index, int) and 0 <= index < len(parts):
            parts[index]["transcript"] = transcript

    # ---- a response ends -------------------------------------------------------------------
    def closed(self) -> None:
        """The connection closed (either side) or was dropped: log what arrived, once."""
        if self.current is not None:
            with _IN_FINISHING:
                self.finish(None, True)

    def finish(self, response: dict[str, Any] | None, cut_short: bool) -> None:
        current, self.current = self.current, None
        end_ns = time.time_ns()
        if current is None:
            current = _Response(end_ns)  # a response.done without its start (connected late)
        if response is None:
            response = _arrived(current)
        output_ids = {get(item, "id") for item in response.get("output") or () if isinstance(item, dict)}
        messages = [m for i, item in self.items.items() if i not in output_ids for m in (message_of(item),) if m]
        for item in response.get("output") or ():  # the conversation goes on with this response
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self.items[item["id"]] = _lean_item(item)
        model = self.model or "unknown"
        if not isinstance(response.get("model"), str):
            response = {**response, "model": model}
        record = CallRecord(REALTIME, {"model": model, "messages": messages}, "", current.start_ns, f"chat {model}", self._attributes())
        record.end_ns = end_ns
        record.ttft_ns = current.ttft_ns
        record.response = response
        record.cut_short = cut_short
        details = response.get("status_details")
        if response.get("status") == "failed":
            record.error = REALTIME.stream_error(get(details, "error") if isinstance(details, dict) else None)
        self._hand_over(record)

    def _attributes(self) -> dict[str, Any]:
        scope = dict(self.scope)
        scope["metadata"] = {**(scope.get("metadata") or {}), "realtime": "true"}
        if self.session_id and not scope.get("thread_identifier"):
            scope["thread_identifier"] = self.session_id
        return scope

    def _hand_over(self, record: CallRecord) -> None:
        hooks = self.hooks
        tracer = hooks.tracing.tracer()
        if tracer is None and hooks.metrics.idle():  # nobody watches: the worker settles it
            record.ctx = self.ctx
            hooks.sink(record)
            return
        ctx = self.ctx or None
        span = None
        if tracer is not None:  # timed by the events and never current: the app's own work
            # between two events belongs to no response
            span = tracer.start_span(
                record.span_name, ctx, trace.SpanKind.CLIENT,
                REALTIME.request_attributes(record.request, "openai"), start_time=record.start_ns,
            )
            span_context = span.get_span_context()
            record.trace_id, record.span_id = span_context.trace_id, span_context.span_id
            parent = trace.get_current_span(ctx).get_span_context() if ctx else None
            record.parent_id = parent.span_id if parent is not None and parent.is_valid else 0
        else:
            record.trace_id, record.span_id, record.parent_id = ids(ctx)
        record.settled = True
        if hooks.defaults:
            record.attributes = _context.merge(hooks.defaults, record.attributes)
        try:
            self._measure(record, span)
        finally:
            hooks.sink(record)

    def _measure(self, record: CallRecord, span: trace.Span | None) -> None:
        """Usage, cost, metrics and span of a response someone watches, on the app's thread."""
        error = record.error
        duration = (record.end_ns - record.start_ns) / 1e9
        requested = record.request.get("model")
        if error is not None:
            self.hooks.metrics.record(REALTIME, "openai", requested, None, duration, None, None, None,
                                      type(error).__qualname__)
            _span.end_error(span, error, record.end_ns)
            return
        attrs, usage, model, tier = REALTIME.outcome(record.response, span is not None)
        record.usage = usage
        priced = Priced(model or requested or "", usage, None, tier, record.request, record.response)
        record.cost = REALTIME.price(self.hooks.prices, priced)
        ttft = (record.ttft_ns - record.start_ns) / 1e9 if record.ttft_ns is not None else None
        if record.cost is not None:
            attrs[COST] = record.cost
        if ttft is not None:
            attrs[RESPONSE_TIME_TO_FIRST_CHUNK] = attrs[TTFT] = ttft
        self.hooks.metrics.record(REALTIME, "openai", requested, model, duration, usage, ttft, record.cost, None)
        _span.end_ok(span, attrs, record.end_ns)


def _arrived(current: _Response) -> dict[str, Any]:
    """A response cut short, shaped like `response.done`'s, from the deltas that arrived."""
    text: list[str] = []
    calls: dict[str, dict[str, Any]] = {}
    for data in current.deltas:
        event = json.loads(data)
        kind, delta = event.get("type", ""), event.get("delta")
        if not isinstance(delta, str):
            continue
        if kind.endswith("function_call_arguments.delta"):
            key = event.get("call_id") or event.get("item_id") or ""
            call = calls.setdefault(key, {"type": "function_call", "call_id": event.get("call_id"), "arguments": ""})
            call["arguments"] += delta
        else:
            text.append(delta)
    output: list[dict[str, Any]] = []
    if text:
        output.append({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "".join(text)}]})
    output.extend(calls.values())
    return {"id": current.id, "status": "incomplete", "output": output}


# ---- the wrappers --------------------------------------------------------------------------
def _session(instance: Any) -> Session | None:
    """The connection's session, opened on first sight when it was not at connect time."""
    state: Session | None = instance.__dict__.get(_KEY)
    if state is None and _hooks is not None:
        with _IN_OPENING:
            state = _open(instance, _hooks)
    return state


def _open(instance: Any, hooks: Hooks) -> Session | None:
    ctx = _span.current()
    if ctx and _span.suppressed(ctx):
        return None
    state = Session(hooks, ctx, _scope())
    instance.__dict__[_KEY] = state
    instance.__dict__[_KEY + "_drop"] = OnDrop(state.closed)
    return state


def _init(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    if _hooks is not None:
        with _IN_OPENING:
            _open(instance, _hooks)
    return result


def _failed(instance: Any) -> None:
    state = instance.__dict__.get(_KEY)
    if state is not None:
        state.closed()


def _sync_recv(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        data = wrapped(*args, **kwargs)
    except BaseException:
        _failed(instance)
        raise
    state = _session(instance)
    if state is not None:
        state.received(data)
    return data


async def _async_recv(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        data = await wrapped(*args, **kwargs)
    except BaseException:
        _failed(instance)
        raise
    state = _session(instance)
    if state is not None:
        state.received(data)
    return data


def _sync_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)  # (an event that failed to go out started nothing)
    state = _session(instance)
    if state is not None and args:
        state.sent(args[0])
    return result


async def _async_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = await wrapped(*args, **kwargs)  # (an event that failed to go out started nothing)
    state = _session(instance)
    if state is not None and args:
        state.sent(args[0])
    return result


def _sync_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _failed(instance)


async def _async_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _failed(instance)


def _targets(module: str) -> tuple[Target, ...]:
    return (
        Target(module, "RealtimeConnection.__init__", _init),
        Target(module, "RealtimeConnection.recv_bytes", _sync_recv),
        Target(module, "RealtimeConnection.send", _sync_send),
        Target(module, "RealtimeConnection.close", _sync_close),
        Target(module, "AsyncRealtimeConnection.__init__", _init),
        Target(module, "AsyncRealtimeConnection.recv_bytes", _async_recv),
        Target(module, "AsyncRealtimeConnection.send", _async_send),
        Target(module, "AsyncRealtimeConnection.close", _async_close),
    )


# GA first; the beta module only where the installed SDK still has it
MODULES = ("openai.resources.realtime.realtime", "openai.resources.beta.realtime.realtime")
TARGETS = tuple(t for module in MODULES for t in _targets(module))


def present() -> list[Target]:
    """The targets whose module the installed SDK has (importing it needs no websockets)."""
    found: list[Target] = []
    for module in MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
            found.extend(_targets(module))
    return found
