"""One call in flight, from the SDK's request() to the record handed to the pipeline.

A call ends exactly once: when request() returns a parsed response, when it raises, when its
stream ends however it ends, or when a raw response's body is closed or dropped. Then its record
goes to the sink (the pipeline's `submit`). A call someone watches (a span, metrics) is measured
here, on the caller's thread, because the span must show its outcome; a lean call (nobody
watching) hands over references and the worker settles it (record/settle.py).
"""

from __future__ import annotations

import copy
import inspect
import time
import weakref
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .. import _context
from .._errors import contained
from .._semconv import GATEWAY_LOG_ID, RESPONSE_TIME_TO_FIRST_CHUNK, TTFT, cost_attributes, scope_attributes
from .._semconv import RESPONSE_FINISH_REASONS as FINISH_REASONS
from ..endpoints import Endpoint
from ..record.call_record import CallRecord
from ..record.cost import settle_cost
from ..record.prices import PriceBook
from ..record.replay import Tapped, fold
from . import span as _span
from .content import SpanContent
from .handover import injected_usage_chunk, is_raw, kept, parsed_result, sent
from .metrics import Metrics
from .stream import AsyncTracedStream, OnDrop, TracedStream, report_close, weakly
from .tap import tap

GATEWAY_LOG_ID_HEADER = "x-respan-log-id"
SENT_AS_JSON: Mapping[str, Any] = MappingProxyType({})  # a handed-over request kept as its JSON
_IN_FINISHING_STREAM = contained("finishing a stream")
_IN_FINISHING_RAW_RESPONSE = contained("finishing a raw response")
_IN_WRAPPING_RAW_RESPONSE = contained("wrapping a raw response")
_IN_WRAPPING_STREAM = contained("wrapping a stream")
_IN_RECORDING_FAILED_CALL = contained("recording a failed call")
_IN_FINISHING_CALL = contained("finishing a call")


class Hooks:
    """What the shells need at call time; replaced as a whole by `instrument()`."""

    __slots__ = ("tracing", "prices", "sink", "defaults", "gateway_urls", "metrics", "content")

    def __init__(
        self,
        tracing: _span.Tracing,
        prices: PriceBook,
        sink: Callable[[CallRecord], None],
        defaults: Mapping[str, Any],
        gateway_urls: frozenset[str] = frozenset(),
        metrics: Metrics | None = None,
        content: SpanContent | None = None,
    ) -> None:
        self.tracing = tracing
        self.prices = prices
        self.sink = sink
        self.defaults = defaults
        self.gateway_urls = gateway_urls  # base URLs (no trailing slash) that are Respan's gateway
        self.metrics = metrics or Metrics()
        # which calls' spans (on the application's own provider) carry content; None: none do
        self.content = content


class ClientInfo(NamedTuple):
    """What we derive from a client's base URL and class (cached per URL object by the shells)."""

    url: Any
    kind: type  # the client's class: an Azure client is Azure whatever its host
    base_url: str
    gateway: bool  # Respan's gateway: it logs the call itself
    provider: str  # gen_ai.provider.name
    price_provider: str | None  # genai-prices provider id
    injects_usage: bool  # host known to accept stream_options.include_usage


class Call:
    """One instrumented call in flight: its span, context token and record."""

    # defaults on the class keep the per-call constructor short
    accumulator: Any = None
    injected = False  # we asked for include_usage and hide its chunk
    gateway = False  # Respan's gateway logs this call itself
    log_id: str | None = None
    finished = False
    parsed: Any = None
    is_stream = False
    deferred = False  # with_streaming_response: the body is read after request() returns
    handed: Any = None  # weakly, the stream we returned from a raw response's parse()
    http: Any = None  # the HTTP response the SDK parsed (seen in _process_response)
    # No span and no metrics to feed: nothing needs the call's outcome before the worker builds
    # its log, so usage, cost, ids and attributes are worked out there, off the caller's thread.
    lean = False

    def __init__(
        self,
        hooks: Hooks,
        endpoint: Endpoint,
        body: Mapping[str, Any],
        scope: Mapping[str, Any],
        info: ClientInfo,
        ctx: Any,
    ) -> None:
        start_ns = time.time_ns()
        name = f"{endpoint.operation} {body.get('model') or endpoint.model_of(body)}"
        self.hooks = hooks
        self.endpoint = endpoint
        self.provider = info.provider
        self.gateway = info.gateway
        self.record = record = CallRecord(endpoint, body, info.base_url, start_ns, name, scope)
        record.price_provider = info.price_provider
        record.provider = info.provider
        tracer = hooks.tracing.tracer()
        if tracer is None and not info.gateway and hooks.metrics.idle():
            self.lean = True
            record.ctx = ctx
            self.span = self.token = None
            return
        record.settled = True
        if hooks.defaults and not info.gateway:  # (the shells merged them for the gateway)
            record.attributes = scope = _context.merge(hooks.defaults, scope) if scope else hooks.defaults
        self.recording = tracer is not None
        attrs: dict[str, Any] = {}
        if self.recording:  # span attributes only when someone can read them
            attrs = endpoint.request_attributes(body, info.provider)
            if scope:
                attrs.update(scope_attributes(scope))
        self.span, self.token, record.trace_id, record.span_id, record.parent_id = _span.start(
            tracer, name, attrs, start_ns, ctx
        )

    def returned(self, result: Any, is_async: bool) -> Any:
        """The SDK's request() returned: finish now, or hand back what finishes later."""
        if self.deferred or (self.is_stream and is_raw(result)):
            return self.unread(result, is_async)
        if self.is_stream:
            return self.stream(result, is_async)
        return self.succeed(result)

    def succeed(self, result: Any) -> Any:
        end_ns = time.time_ns()
        if self.token is not None:
            _span.detach(self.token)
        try:
            self._complete(result, end_ns)
        except Exception as exc:  # noqa: BLE001 - ours; the user's result goes back untouched
            _IN_FINISHING_CALL.swallow(exc)
        return result

    def _complete(self, result: Any, end_ns: int) -> None:
        """Finish a successful call: `result` is what the SDK returned (a raw-response wrapper,
        a model, or a stream's accumulator)."""
        if self.finished:
            return
        self.finished = True
        record = self.record
        record.end_ns = end_ns
        http = None if self.is_stream else self.http
        if self.lean:
            try:
                kept(record, result, http)
            finally:
                self._hand_over()
            return
        attrs: dict[str, Any] = {}
        try:
            response = parsed_result(result)
            kept(record, response, http)
            # (an endpoint that keeps a summary is measured on it, as the worker would)
            attrs = self._measure(response if record.response is None else record.response, end_ns)
        finally:  # should reading the response fail, the span still ends and the log goes out
            if self.gateway and self.log_id:
                attrs[GATEWAY_LOG_ID] = self.log_id
            _span.end_ok(self.span, attrs, end_ns)
            if not self.gateway:  # the gateway writes the request log itself
                self._hand_over()

    def _measure(self, response: Any, end_ns: int) -> dict[str, Any]:
        """Usage, cost and metrics of a successful call; its span attributes."""
        record = self.record
        endpoint = self.endpoint
        attrs, usage, model, _ = settle_cost(record, response, self.hooks.prices, self.recording)
        if record.cost is not None or record.cost_unpriced:
            attrs.update(cost_attributes(record.cost, record.cost_breakdown, record.cost_unpriced))
        if self.recording and self.hooks.content is not None:
            attrs.update(self.hooks.content.attributes(endpoint, record, response, attrs.get(FINISH_REASONS)))
        ttft = (record.ttft_ns - record.start_ns) / 1e9 if record.ttft_ns is not None else None
        if ttft is not None:
            attrs[RESPONSE_TIME_TO_FIRST_CHUNK] = attrs[TTFT] = ttft
        self.hooks.metrics.record(
            endpoint,
            self.provider,
            record.request.get("model"),
            model,
            (end_ns - record.start_ns) / 1e9,
            usage,
            ttft,
            record.cost,
            None,
        )
        return attrs

    def _hand_over(self) -> None:
        """Queue the record. It must not reference this call: a cycle would leave every record
        to the garbage collector instead of freeing it when the worker is done with it."""
        record = self.record
        if record.response_json is not None:  # the request too: its JSON, not the dict tree
            request_json = sent(self.http, record.request)
            if request_json is not None:
                record.request_json = request_json
                # The worker reads the JSON (`settle`), never the tree: held until then, the
                # tree (the SDK's copy of the messages, sharing the caller's strings) would
                # outlive the call by up to half a second, twice the memory a waiting log needs
                # and a garbage collection every ~700 calls for nothing
                record.request = SENT_AS_JSON
        self.hooks.sink(record)

    def fail(self, exc: BaseException) -> None:
        end_ns = time.time_ns()
        if self.token is not None:
            _span.detach(self.token)
        with _IN_RECORDING_FAILED_CALL:
            self._failed(exc, end_ns)

    def _failed(self, exc: BaseException, end_ns: int) -> None:
        if self.finished:
            return
        self.finished = True
        record = self.record
        record.end_ns = end_ns
        record.error = exc
        if self.lean:
            self._hand_over()
            return
        try:
            self.hooks.metrics.record(
                self.endpoint,
                self.provider,
                record.request.get("model"),
                None,
                (end_ns - record.start_ns) / 1e9,
                None,
                None,
                None,
                type(exc).__qualname__,
            )
            if self.gateway and self.span is not None:
                response = getattr(exc, "response", None)
                log_id = self.log_id or (
                    response.headers.get(GATEWAY_LOG_ID_HEADER) if response is not None else None
                )
                if log_id:
                    self.span.set_attribute(GATEWAY_LOG_ID, log_id)
            content = self.hooks.content
            if self.recording and self.span is not None and content is not None:
                self.span.set_attributes(content.attributes(self.endpoint, record, None, None))
        finally:  # whatever failed above, the span ends and the log goes out
            _span.end_error(self.span, exc, end_ns)
            if not self.gateway:
                self.hooks.sink(record)

    # ---- streams --------------------------------------------------------------------------
    def stream(self, result: Any, is_async: bool, detach: bool = True) -> Any:
        """Detach from the caller's context and hand back what finishes this call: the SDK's
        stream itself, tapped, for a lean call; else a proxy."""
        if detach and self.token is not None:
            _span.detach(self.token)
        with _IN_WRAPPING_STREAM:
            self.record.stream = True
            if (
                (self.lean or self.endpoint.always_taps)
                and not self.deferred
                and self.endpoint.taps_streams
                and tap(result, self, is_async, self.injected, self.endpoint.stream_errors)
            ):
                self.http = None
                return result
            self.accumulator = self.endpoint.accumulator()
            hide = injected_usage_chunk if self.injected else None
            proxy = AsyncTracedStream if is_async else TracedStream
            return proxy(result, self, self.accumulator.add, hide)
        return result

    def unread(self, result: Any, is_async: bool) -> Any:
        """A raw-response wrapper whose body is still unread: `with_streaming_response`, or
        `with_raw_response` of a stream (litellm streams this way). Its body is read later,
        through the object we return.

        The stream its parse() returns is followed like any other, and ends the call. Until
        one is parsed, the call ends when the body is closed (the `with_streaming_response`
        context manager always closes it, and then a non-streamed call ends with the model
        the user parsed) or when the wrapper goes, unread.
        """
        _span.detach(self.token)
        with _IN_WRAPPING_RAW_RESPONSE:
            http = result.http_response
            if self.deferred:  # its close (the `with` exit, the app's) ends the call
                report_close(result, weakly(self, "_body_closed"), is_async, "close")
            else:  # nothing but the user reads a raw stream's body: its close is theirs
                report_close(http, self._body_closed, is_async)
            # parse() goes through a copy of the wrapper (the same response and parse cache):
            # a function kept on the wrapper that referred to it would make a cycle, and only
            # the garbage collector would free a dropped wrapper, its stream and its log
            reader = copy.copy(result)
            parse = reader.parse
            if self.is_stream:
                self.http = None  # (the response keeps this call: no cycle through it)
                # The copy goes with the wrapper's parse(), which outlives the wrapper in
                # `create(...).parse()`. (Not the HTTP response: the HTTP library keeps an
                # unclosed one in a cycle of its own.)
                reader._respan_unread = OnDrop(self._body_closed)
            if inspect.iscoroutinefunction(parse):

                async def aparse(*args: Any, **kwargs: Any) -> Any:
                    return self._parsed_by_user(await parse(*args, **kwargs), is_async)

                result.parse = aparse
            else:
                result.parse = lambda *a, **k: self._parsed_by_user(parse(*a, **k), is_async)
        return result

    def _parsed_by_user(self, parsed: Any, is_async: bool) -> Any:
        if not self.is_stream:
            self.parsed = parsed
            return parsed
        if self.handed is not None:  # parsed again: the SDK's cached stream, as we handed it out
            handed = self.handed()
            return parsed if handed is None else handed
        if self.finished:  # its body was closed first
            return parsed
        stream = self.stream(parsed, is_async, detach=False)
        with _IN_WRAPPING_STREAM:
            self.handed = weakref.ref(stream)
        return stream

    def _body_closed(self) -> None:
        """The body was closed, or the wrapper went, with no stream parsed from it."""
        if self.handed is not None or self.finished:
            return  # a parsed stream ends the call itself
        with _IN_FINISHING_RAW_RESPONSE:
            if self.is_stream:
                self.record.stream = True
                self.accumulator = self.endpoint.accumulator()
                self.finish_stream(None, True)
            else:
                self._complete(self.parsed, time.time_ns())

    def finish_tapped(self, tapped: Tapped, error: BaseException | None, cut_short: bool) -> None:
        """A lean stream ended: the worker reads its events (record/replay.py)."""
        end_ns = time.time_ns()
        with _IN_FINISHING_STREAM:
            self.record.cut_short = cut_short
            self.record.events = tapped
            if error is not None:
                self._failed(error, end_ns)
            else:
                self._complete(None, end_ns)

    def fold_tapped(self, tapped: Tapped) -> None:
        """A long lean stream: read what it kept so far now, and let it go."""
        fold(self.endpoint, tapped)

    def enter(self) -> object:
        """Make this call's span current for the stream's consumer (None: no span to show)."""
        return _span.attach(self.span) if self.span is not None else None

    def leave(self, token: object) -> None:
        _span.detach_quietly(token)

    def first_output(self, when_ns: int) -> None:
        self.record.ttft_ns = when_ns

    def finish_stream(self, error: BaseException | None, cut_short: bool) -> None:
        end_ns = time.time_ns()
        with _IN_FINISHING_STREAM:
            acc = self.accumulator
            if cut_short:
                self.record.cut_short = True
            if error is not None:
                self.record.response = acc
                self._failed(error, end_ns)
            else:
                final = getattr(acc, "final", None)
                self._complete(final if final is not None else acc, end_ns)
