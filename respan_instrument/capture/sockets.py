"""The SDK's WebSocket connections watched as sessions: the wrappers every protocol shares, and
the hand-over of the logs a session makes.

Each of the SDK's socket protocols (Realtime, Responses WebSocket mode, Live, Realtime
translations) reads every message through its connection's `recv_bytes()` (`recv()`, iteration
and `dispatch_events()` all go through it; an app may call it directly and parse the bytes
itself) and sends each event through its `send()` (the resources' helpers call it too).
Wrapping those two methods, `close()` and `__init__`, sync and async, sees every message exactly
once and changes none: the wrappers look, then return what the SDK returned or re-raise what it
raised. What the messages mean is a `Recorder`'s business, one per protocol; this module knows
none of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from opentelemetry import trace

from .. import _context
from .._errors import contained
from .._semconv import RESPONSE_TIME_TO_FIRST_CHUNK, TTFT, cost_attributes
from ..record.call_record import CallRecord
from ..record.cost import settle_cost
from ..record.settle import ids
from . import span as _span
from .on_import import WhenImported
from .stream import OnDrop
from .traced_call import Hooks

_KEY = "_respan_socket"  # the connection's recorder, in the connection's __dict__
_IN_OPENING = contained("opening a socket session")
_IN_CLOSING = contained("closing a socket session")
_hooks: Hooks | None = None
_scope = _context.current_reader()


def set_hooks(hooks: Hooks | None) -> None:
    global _hooks
    _hooks = hooks


_HEAD = 96  # bytes of a message that hold its type, whichever key the server writes first


def message(data: Any) -> tuple[bytes, bytes] | None:
    """A received message as bytes, and the part that names its type (the whole message when a
    server writes its type after the first bytes); None for one that is neither text nor bytes."""
    if type(data) is not bytes:
        if not isinstance(data, str):
            return None
        data = data.encode()
    head = data[:_HEAD]
    return data, head if b'"type"' in head else data


class Recorder:
    """One connection's state, as a protocol reads it. It holds no reference to the connection
    (the connection holds it), so a dropped connection is freed at once and its finalizer logs
    what was in flight."""

    __slots__ = ("hooks", "ctx", "scope", "__weakref__")
    # the types of the server events `_event` reads, as their bytes appear in a message's head:
    # any other message is passed over without parsing its JSON
    parsed: tuple[bytes, ...] = ()
    reading: contained  # what a failure while reading one is reported as

    def __init__(self, hooks: Hooks, ctx: Any, scope: Mapping[str, Any]) -> None:
        self.hooks = hooks
        self.ctx = ctx
        self.scope = scope

    def read(self, data: bytes, head: bytes) -> None:
        """Hand a received message to `_event`, parsed, when its type is one of `parsed`."""
        if any(marker in head for marker in self.parsed):
            with self.reading:
                event = json.loads(data)
                if type(event) is dict:
                    self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        """One server event of the types in `parsed`."""

    def opened(self, connection: Any) -> None:
        """The SDK's connection object, once, when the recorder starts following it."""

    def received(self, data: Any) -> None:
        """One message from the server, as `recv_bytes()` returned it (bytes, or str)."""

    def sent(self, event: Any) -> None:
        """One event the app sent (a dict or an SDK model)."""

    def closed(self) -> None:
        """The connection closed (either side) or was dropped: log what was in flight, once."""

    def attributes(self, thread: str | None, **metadata: str) -> dict[str, Any]:
        """The log's attributes: the app's `attributes()` when the session opened, with
        `thread` as its thread unless the app named one, and `metadata` added."""
        scope = dict(self.scope)
        if metadata:
            scope["metadata"] = {**(scope.get("metadata") or {}), **metadata}
        if thread and not scope.get("thread_identifier"):
            scope["thread_identifier"] = thread
        return scope

    def hand_over(self, record: CallRecord, ctx: Any = None) -> None:
        """Queue a finished log. A log someone watches (a span, metrics) is measured here;
        else the worker settles it. `ctx`: the context it belongs to, when not the one the
        session opened in (a log nested in another's trace)."""
        hooks = self.hooks
        tracer = hooks.tracing.tracer()
        ctx = self.ctx if ctx is None else ctx
        if tracer is None and hooks.metrics.idle():  # nobody watches: the worker settles it
            record.ctx = ctx
            hooks.sink(record)
            return
        ctx = ctx or None
        span = None
        if tracer is not None:  # timed by the events and never current: the app's own work
            # between two events belongs to no log
            attrs = record.endpoint.request_attributes(record.request, "openai")
            span = tracer.start_span(
                record.span_name, ctx, trace.SpanKind.CLIENT, attrs, start_time=record.start_ns
            )
            span_context = span.get_span_context()
            record.trace_id, record.span_id = span_context.trace_id, span_context.span_id
            outer = trace.get_current_span(ctx).get_span_context() if ctx else None
            record.parent_id = outer.span_id if outer is not None and outer.is_valid else 0
        else:
            record.trace_id, record.span_id, record.parent_id = ids(ctx)
        self.settled(record, span)

    def settled(self, record: CallRecord, span: trace.Span | None) -> None:
        """Queue a log whose ids are set: measured here, its span (if any) ended."""
        record.settled = True
        if self.hooks.defaults:
            record.attributes = _context.merge(self.hooks.defaults, record.attributes)
        try:
            self._measure(record, span)
        finally:
            self.hooks.sink(record)

    def _measure(self, record: CallRecord, span: trace.Span | None) -> None:
        """Usage, cost, metrics and span of a log someone watches, on the app's thread."""
        endpoint = record.endpoint
        error = record.error
        duration = (record.end_ns - record.start_ns) / 1e9
        requested = record.request.get("model")
        if error is not None:
            self.hooks.metrics.record(
                endpoint, "openai", requested, None, duration, None, None, None, type(error).__qualname__
            )
            _span.end_error(span, error, record.end_ns)
            return
        attrs, usage, model, _ = settle_cost(record, record.response, self.hooks.prices, span is not None)
        ttft = (record.ttft_ns - record.start_ns) / 1e9 if record.ttft_ns is not None else None
        if record.cost is not None or record.cost_unpriced:
            attrs.update(cost_attributes(record.cost, record.cost_breakdown, record.cost_unpriced))
        if ttft is not None:
            attrs[RESPONSE_TIME_TO_FIRST_CHUNK] = attrs[TTFT] = ttft
        self.hooks.metrics.record(
            endpoint, "openai", requested, model, duration, usage, ttft, record.cost, None
        )
        _span.end_ok(span, attrs, record.end_ns)


Factory = Callable[[Hooks, Any, Mapping[str, Any]], Recorder]


class Protocol(NamedTuple):
    """A socket protocol of the SDK: where its connection classes live (module, class; each
    with an `Async` twin; those the installed SDK lacks are skipped), and the recorder that
    reads it."""

    places: tuple[tuple[str, str], ...]
    recorder: Factory


def _state(instance: Any, factory: Factory) -> Recorder | None:
    """The connection's recorder, opened on first sight when it was not at connect time."""
    state: Recorder | None = instance.__dict__.get(_KEY)
    if state is None and _hooks is not None:
        with _IN_OPENING:
            state = _open(instance, _hooks, factory)
    return state


def _open(instance: Any, hooks: Hooks, factory: Factory) -> Recorder | None:
    ctx = _span.current()
    if ctx and _span.suppressed(ctx):
        return None
    state = factory(hooks, ctx, _scope())
    state.opened(instance)
    instance.__dict__[_KEY] = state
    instance.__dict__[_KEY + "_drop"] = OnDrop(state.closed)
    for data in _queued(instance):
        head = data[:96] if isinstance(data, bytes) else data[:96].encode()
        if b'_buffer.append"' not in head and b'input_audio.append"' not in head:
            state.sent(json.loads(data))  # (audio appends are never read)
    return state


def _queued(instance: Any) -> list[Any]:
    """The events the app gave the connection manager's `send()` before the connection opened:
    they wait in the connection's send queue and go out as text, never through its `send()`."""
    queue = getattr(getattr(instance, "_send_queue", None), "_queue", None)
    if type(queue) is not list:
        return []
    return [
        entry[0] for entry in queue if type(entry) is tuple and entry and isinstance(entry[0], (str, bytes))
    ]


def _failed(instance: Any) -> None:
    state = instance.__dict__.get(_KEY)
    if state is not None:
        with _IN_CLOSING:
            state.closed()


def _wrappers(factory: Factory) -> dict[str, tuple[Any, Any]]:
    """method name -> (sync wrapper, async wrapper), for connections read by `factory`."""

    def init(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        if _hooks is not None:
            with _IN_OPENING:
                _open(instance, _hooks, factory)
        return result

    def sync_recv(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            data = wrapped(*args, **kwargs)
        except BaseException:
            _failed(instance)
            raise
        state = _state(instance, factory)
        if state is not None:
            state.received(data)
        return data

    async def async_recv(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            data = await wrapped(*args, **kwargs)
        except BaseException:
            _failed(instance)
            raise
        state = _state(instance, factory)
        if state is not None:
            state.received(data)
        return data

    def sync_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)  # (an event that failed to go out started nothing)
        state = _state(instance, factory)
        if state is not None and args:
            state.sent(args[0])
        return result

    async def async_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = await wrapped(*args, **kwargs)  # (an event that failed to go out started nothing)
        state = _state(instance, factory)
        if state is not None and args:
            state.sent(args[0])
        return result

    def sync_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            _failed(instance)

    async def async_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _failed(instance)

    return {
        "__init__": (init, init),
        "recv_bytes": (sync_recv, async_recv),
        "send": (sync_send, async_send),
        "close": (sync_close, async_close),
    }


def patches(protocols: tuple[Protocol, ...]) -> list[WhenImported]:
    """One patch per connection module, applied when the SDK imports that module (at once if
    it has): instrument() imports none of them, as the SDK itself imports a surface only when
    the app first touches it (the realtime modules alone import for a third of a second)."""
    return [
        WhenImported(module, _class_targets(cls, protocol.recorder), f"the {cls} websocket")
        for protocol in protocols
        for module, cls in protocol.places
    ]


def _class_targets(cls: str, factory: Factory) -> Callable[[Any], list[tuple[str, Any]]]:
    def targets(module: Any) -> list[tuple[str, Any]]:
        if not (hasattr(module, cls) and hasattr(module, "Async" + cls)):
            return []  # (an SDK without this connection class)
        return [
            (f"{owner}.{method}", wrapper)
            for method, (sync, asynchronous) in _wrappers(factory).items()
            for owner, wrapper in ((cls, sync), ("Async" + cls, asynchronous))
        ]

    return targets
