"""The patch table and the thin sync/async shells: the only module that names openai internals.

We patch the SDK's single request choke point, `SyncAPIClient.request` and
`AsyncAPIClient.request` (same signature in openai 1.x, 2.x and 3.x), and dispatch on the
endpoint path. Every resource method, `with_raw_response` wrapper (even ones a client cached
before `instrument()`), `parse()` helper and Azure client goes through it exactly once per call.
"""

from __future__ import annotations

import contextvars
import copy
import inspect
import json
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import wrapt

from . import _context, _span
from ._accumulate import ChatAccumulator, ResponsesAccumulator
from ._cost import PriceBook, provider_from_base_url
from ._errors import contained, log_once
from ._metrics import Metrics
from ._operations import (
    AZURE_PRICE_PROVIDER,
    AZURE_PROVIDER,
    EMBEDDINGS,
    OPERATIONS,
    RESPONSES,
    Operation,
    outcome,
    provider_name,
    request_attributes,
    usage_injectable,
)
from ._record import CallRecord
from ._semconv import ATTRIBUTE_PREFIX, COST, GATEWAY_LOG_ID, RESPONSE_TIME_TO_FIRST_CHUNK
from ._stream import (
    AsyncTracedStream,
    OnDrop,
    ResponseProxy,
    Tapped,
    TracedStream,
    report_close,
    tap,
)

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_IN_STARTING_CALL = contained("starting a call")
_IN_FINISHING_STREAM = contained("finishing a stream")
_IN_FINISHING_RAW_RESPONSE = contained("finishing a raw response")
_IN_WRAPPING_RAW_RESPONSE = contained("wrapping a raw response")
_IN_WRAPPING_STREAM = contained("wrapping a stream")
_IN_RECORDING_FAILED_CALL = contained("recording a failed call")
_IN_FINISHING_CALL = contained("finishing a call")
_IN_READING_STREAM = contained("reading a stream's events")


class Target(NamedTuple):
    module: str
    name: str
    wrapper: Callable[..., Any]


GATEWAY_LOG_ID_HEADER = "x-respan-log-id"
# Respan fields the gateway reads from the request body (attributes() values)
GATEWAY_FIELDS = (*_context.LOG_FIELDS, _context.CREDENTIALS)
# The call whose request() is running in this context. It keeps a call from being recorded
# twice when another tool's wrapper sits between two of ours, and lets _process_response find
# the gateway call it belongs to.
_in_flight: contextvars.ContextVar[Call | None] = contextvars.ContextVar("respan_call", default=None)


class Hooks:
    """What the shells need at call time; replaced as a whole by `instrument()`."""

    __slots__ = ("tracing", "prices", "sink", "defaults", "gateway_urls", "metrics")

    def __init__(
        self,
        tracing: _span.Tracing,
        prices: PriceBook,
        sink: Callable[[CallRecord], None],
        defaults: Mapping[str, Any],
        gateway_urls: frozenset[str] = frozenset(),
        metrics: Metrics | None = None,
    ) -> None:
        self.tracing = tracing
        self.prices = prices
        self.sink = sink
        self.defaults = defaults
        self.gateway_urls = gateway_urls  # base URLs (no trailing slash) that are Respan's gateway
        self.metrics = metrics or Metrics()


_hooks: Hooks | None = None
_handles: list[tuple[Target, Any]] = []


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
    # its log, so usage, cost, ids and attributes are worked out there (see settle()), off the
    # caller's thread. It is most of what a call used to cost its caller (~15 us of ~30).
    lean = False
    ctx: Any = None

    def __init__(
        self,
        hooks: Hooks,
        op: Operation,
        body: Mapping[str, Any],
        scope: Mapping[str, Any],
        info: ClientInfo,
        ctx: Any,
    ) -> None:
        start_ns = time.time_ns()
        name = f"{op.name} {body.get('model')}"
        self.hooks = hooks
        self.op = op
        self.provider = info.provider
        self.price_provider = info.price_provider
        self.gateway = info.gateway
        self.record = record = CallRecord(op.log_type, body, info.base_url, start_ns, name, scope)
        tracer = hooks.tracing.tracer()
        if tracer is None and not info.gateway and hooks.metrics.idle():
            self.lean = True
            self.ctx = ctx
            self.span = self.token = None
            return
        if hooks.defaults and not info.gateway:  # (_begin merged them for the gateway)
            record.attributes = scope = _context.merge(hooks.defaults, scope) if scope else hooks.defaults
        self.recording = tracer is not None
        attrs: dict[str, Any] = {}
        if self.recording:  # span attributes only when someone can read them
            attrs = request_attributes(op, body, info.provider)
            if scope:
                attrs.update(scope_attributes(scope))
        self.span, self.token, record.trace_id, record.span_id, record.parent_id = _span.start(
            tracer, name, attrs, start_ns, ctx
        )

    def returned(self, result: Any, is_async: bool) -> Any:
        """The SDK's request() returned: finish now, or hand back what finishes later."""
        if self.deferred or (self.is_stream and _is_raw(result)):
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
        if self.lean:
            try:
                record.response = _kept(self.op, result, None if self.is_stream else self.http)
            finally:
                self._hand_over()
            return
        attrs: dict[str, Any] = {}
        try:
            response = _parsed(result)
            record.response = _kept(self.op, response, None if self.is_stream else self.http)
            attrs = self._measure(response, end_ns)
        finally:  # should reading the response fail, the span still ends and the log goes out
            if self.gateway and self.log_id:
                attrs[GATEWAY_LOG_ID] = self.log_id
            _span.end_ok(self.span, attrs, end_ns)
            if not self.gateway:  # the gateway writes the request log itself
                if type(record.response) is bytes:  # likewise the request: its JSON, not the dict tree
                    record.body = _sent(self.http, record.body)
                self.hooks.sink(record)

    def _measure(self, response: Any, end_ns: int) -> dict[str, Any]:
        """Usage, cost and metrics of a successful call; its span attributes."""
        record = self.record
        attrs, usage, model, tier = outcome(self.op, response, self.recording)
        if usage is not None:
            record.cost = self.hooks.prices.cost(
                model or record.body.get("model") or "",
                usage,
                provider=self.price_provider,
                service_tier=tier,
            )
            if record.cost is not None:
                attrs[COST] = record.cost
        ttft = (record.ttft_ns - record.start_ns) / 1e9 if record.ttft_ns is not None else None
        if ttft is not None:
            attrs[RESPONSE_TIME_TO_FIRST_CHUNK] = ttft
        self.hooks.metrics.record(
            self.op.name,
            self.provider,
            record.body.get("model"),
            model,
            (end_ns - record.start_ns) / 1e9,
            usage,
            ttft,
            record.cost,
            None,
        )
        return attrs

    def _hand_over(self) -> None:
        """Lean: queue the record with what the worker needs to settle it (see `settle`).

        The record must not reference this call: a cycle would leave every record to the
        garbage collector instead of freeing it when the worker is done with it.
        """
        record = self.record
        if type(record.response) is bytes:  # the request too: its JSON, not the dict tree
            record.body = _sent(self.http, record.body)
        record.ctx, record.price_provider = self.ctx, self.price_provider
        record.pending = hooks = self.hooks
        self.ctx = None
        hooks.sink(record)

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
                self.op.name,
                self.provider,
                record.body.get("model"),
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
                self.lean
                and not self.deferred
                and tap(result, self, is_async, self.injected, self.op is not RESPONSES)
            ):
                self.http = None
                return result
            self.accumulator = ResponsesAccumulator() if self.op is RESPONSES else ChatAccumulator()
            hide = _injected_usage_chunk if self.injected else None
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
            if self.deferred:
                result.http_response = ResponseProxy(http, self._body_closed)
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
                self.accumulator = ResponsesAccumulator() if self.op is RESPONSES else ChatAccumulator()
                self.finish_stream(None, True)
            else:
                self._complete(self.parsed, time.time_ns())

    def finish_tapped(self, tapped: Tapped, error: BaseException | None, cut_short: bool) -> None:
        """A lean stream ended: the worker reads its events (see settle())."""
        end_ns = time.time_ns()
        with _IN_FINISHING_STREAM:
            self.record.cut_short = cut_short
            if error is not None:
                self.record.response = tapped
                self._failed(error, end_ns)
            else:
                self._complete(tapped, end_ns)

    def fold_tapped(self, tapped: Tapped) -> None:
        """A long lean stream (`FOLD_AT` events kept): read them now and let them go."""
        if tapped.reader is None:
            tapped.reader = _StreamReader(self.op)
        upto = len(tapped.data) - 2  # the last two stay: the end of the stream looks for [DONE]
        tapped.reader.feed(tapped.data[:upto], tapped.times[:upto])
        del tapped.data[:upto]
        del tapped.times[:upto]

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


def scope_attributes(scope: Mapping[str, Any]) -> dict[str, Any]:
    """attributes() values as span attributes (never the credentials).

    A span attribute holds a str, bool, int or float: those keep their type; a nested list or
    dict is shown as its JSON text, and a None is left out (OpenTelemetry rejects it with a
    warning).
    """
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if key == _context.CREDENTIALS:
            continue
        if isinstance(value, Mapping):
            for sub, item in value.items():
                if item is None:
                    continue
                out[f"{ATTRIBUTE_PREFIX}{key}.{sub}"] = (
                    item if isinstance(item, (str, int, float)) else json.dumps(item, default=str)
                )
        else:
            out[ATTRIBUTE_PREFIX + key] = value
    return out


_BY_LOG_TYPE = {op.log_type: op for op in OPERATIONS.values()}


def settle(record: CallRecord) -> None:
    """Worker thread: what a lean call's thread left undone, before its log is built.

    Trace ids, the default attributes, and usage and cost from the response the record kept
    (its JSON is parsed here, and the request's likewise, so the log builder parses neither again).
    """
    hooks, record.pending = record.pending, None
    if hooks is None:
        return
    ctx, record.ctx = record.ctx, None
    op = _BY_LOG_TYPE[record.log_type]
    price_provider = record.price_provider
    record.trace_id, record.span_id, record.parent_id = _span.ids(ctx)
    defaults = hooks.defaults
    if defaults:
        scope = record.attributes
        record.attributes = _context.merge(defaults, scope) if scope else defaults
    if type(record.body) is bytes:
        record.body = _json_or(record.body, {})
    if type(record.response) is bytes:
        record.response = _json_or(record.response, None)
    elif type(record.response) is Tapped:
        _replay(record, op, record.response)
    if record.error is not None or record.response is None:
        return
    _, usage, model, tier = outcome(op, record.response, False)
    if usage is not None:
        requested = record.body.get("model") if isinstance(record.body, Mapping) else None
        record.cost = hooks.prices.cost(
            model or requested or "", usage, provider=price_provider, service_tier=tier
        )


class _StreamReader:
    """Reads a lean stream's events, as the SDK read them, through the accumulator: output,
    usage and time to first token; an error event the SDK raised becomes the call's error.

    The worker reads them after the stream ended; a long stream's are read on the way, in
    blocks of `FOLD_AT`, so that what it keeps stays bounded (see `Call.fold_tapped`).
    """

    __slots__ = ("op", "acc", "broken", "stopped", "ttft_ns", "error")

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.acc: Any = ResponsesAccumulator() if op is RESPONSES else ChatAccumulator()
        self.broken = False  # past a bug of ours: the output stays as read before it
        self.stopped = False  # past an error event: the SDK raised there
        self.ttft_ns: int | None = None
        self.error: BaseException | None = None

    def feed(self, data: list[str], times: Any) -> None:
        if self.stopped:
            return
        acc = self.acc
        for index, event in enumerate(_parsed_events(data)):
            if type(event) is not dict:
                continue
            if self.op is not RESPONSES and event.get("error"):
                self.error = _stream_error(event["error"])
                self.stopped = True
                return
            if self.broken:  # the usage comes last: keep it
                usage = event.get("usage") or _get_in(event, "response", "usage")
                if isinstance(usage, dict):
                    acc.usage = usage
                continue
            try:
                output = acc.add(event)
            except Exception as exc:  # noqa: BLE001 - log what was read before it
                _IN_READING_STREAM.swallow(exc)
                self.broken = True
                continue
            if output and self.ttft_ns is None:
                self.ttft_ns = times[index]

    def finish(self, record: CallRecord) -> None:
        if self.ttft_ns is not None:
            record.ttft_ns = self.ttft_ns
        if self.error is not None:
            record.error = self.error
            record.cut_short = False
        final = getattr(self.acc, "final", None)
        record.response = final if final is not None else self.acc


def _replay(record: CallRecord, op: Operation, tapped: Tapped) -> None:
    """Worker: the rest of a lean stream's events (all of a short one's)."""
    reader = tapped.reader if tapped.reader is not None else _StreamReader(op)
    reader.feed(tapped.data, tapped.times)
    reader.finish(record)


def _parsed_events(data: list[str]) -> list[Any]:
    """Each event's JSON, up to `[DONE]` (where the SDK stops); None for one that is not JSON.

    All in one `json.loads` of an array when they allow it: one C call instead of one a chunk.
    """
    end = len(data)
    for i in range(max(0, end - 3), end):
        if data[i].startswith("[DONE]"):
            end = i
            break
    try:
        events = json.loads("[" + ",".join(data[:end]) + "]")
        if len(events) == end:
            return events  # type: ignore[no-any-return]
    except ValueError:
        pass
    events = []
    for d in data[:end]:
        if d.startswith("[DONE]"):
            break
        events.append(_json_or(d, None))
    return events


def _get_in(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _stream_error(error: Any) -> BaseException:
    """The error the SDK raised for an error event in a stream (an `openai.APIError`)."""
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    api_error = getattr(sys.modules.get("openai"), "APIError", None)
    if not (isinstance(api_error, type) and issubclass(api_error, Exception)):
        return RuntimeError(message)
    # Built without its __init__: the worker has no request to give it (openai >= 3.60 reads
    # the request's headers there), and the log needs only its type, message and body.
    exc = api_error.__new__(api_error)
    Exception.__init__(exc, message)
    details = error if isinstance(error, Mapping) else {}
    vars(exc).update(  # (the instance dict: nothing the SDK defines can make this raise)
        message=message, request=None, body=error, code=details.get("code"),
        param=details.get("param"), type=details.get("type"),
    )
    return exc


class _Summary:
    """The parts of a response a log is built from, without its payload (embedding vectors)."""

    __slots__ = ("model", "usage")

    def __init__(self, response: Any) -> None:
        self.model = getattr(response, "model", None)
        self.usage = getattr(response, "usage", None)


def _kept(op: Operation, result: Any, http: Any) -> Any:
    """What the record keeps of a response until the worker builds the log.

    The response body as received (bytes) when there is one: the parsed model is a tree of
    some 25 objects the garbage collector would track for as long as the log waits, and every
    full collection of a busy process paid for them (measured at ~10 µs a call). Embeddings
    keep only what the log needs, never the vectors. `result` is what the SDK returned; a
    raw-response wrapper is parsed only when its body cannot be kept.
    """
    if result is None:
        return None
    if op is EMBEDDINGS:
        response = _parsed(result)
        return None if response is None else _Summary(response)
    if http is not None:  # None for streams
        try:
            body = http.content
        except Exception:  # noqa: BLE001 - not read (or not httpx): keep the model
            return _parsed(result)
        if type(body) is bytes and body[:1] == b"{":
            return body
    return _parsed(result)


def _json_or(data: bytes | str, default: Any) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return default


def _sent(http: Any, body: Mapping[str, Any]) -> Any:
    """The request body as sent (bytes), when it is the JSON of `body` (nothing of ours added)."""
    try:
        content = http.request.content
    except Exception:  # noqa: BLE001 - a streamed or unread body: keep the dict
        return body
    return content if type(content) is bytes and content[:1] == b"{" else body


def _injected_usage_chunk(chunk: Any) -> bool:
    """The usage-only chunk that `include_usage` adds: no choices, usage set."""
    return not chunk.choices and chunk.usage is not None


def _wants_usage(body: Mapping[str, Any]) -> bool:
    """No `stream_options.include_usage` of the user's own: we may ask for it."""
    options = body.get("stream_options")
    return not (isinstance(options, Mapping) and "include_usage" in options)


def _with_body(
    args: tuple[Any, ...], kwargs: dict[str, Any], options: Any, body: Mapping[str, Any]
) -> tuple[Any, ...]:
    """The SDK call's arguments with a copy of its options carrying `body`; the caller's own
    dicts (and the SDK's original options) stay untouched."""
    changed = copy.copy(options)
    changed.json_data = body
    if len(args) > 1:
        return (args[0], changed, *args[2:])
    kwargs["options"] = changed
    return args


_raw_types: dict[type, bool] = {}


def _is_raw(result: Any) -> bool:
    """Is this a `with_raw_response` wrapper (LegacyAPIResponse / APIResponse)? Cached per type."""
    kind = type(result)
    raw = _raw_types.get(kind)
    if raw is None:
        raw = _raw_types[kind] = any(
            base.__module__ in ("openai._legacy_response", "openai._response") and hasattr(base, "parse")
            for base in kind.__mro__
        )
    return raw


def _parsed(result: Any) -> Any:
    """The SDK model behind a `with_raw_response` result (parse() is cached by the SDK)."""
    if _is_raw(result):
        try:
            return result.parse()
        except Exception:  # noqa: BLE001 - the user's own parse() raises the same; log what we have
            return None
    return result


class ClientInfo(NamedTuple):
    url: Any
    kind: type  # the client's class: an Azure client is Azure whatever its host
    base_url: str
    gateway: bool  # Respan's gateway: it logs the call itself
    provider: str  # gen_ai.provider.name
    price_provider: str | None  # genai-prices provider id
    injects_usage: bool  # host known to accept stream_options.include_usage


_url_cache: dict[int, ClientInfo] = {}
_scope = _context.current_reader()


def _client_info(url: Any, kind: type, hooks: Hooks) -> ClientInfo:
    """What we derive from a client's base URL and class, cached per URL object."""
    info = _url_cache.get(id(url))
    if info is None or info.url is not url or info.kind is not kind:
        text = str(url)
        gateway = text.rstrip("/") in hooks.gateway_urls
        if gateway:
            provider, price_provider, injects = "respan", provider_from_base_url(text), True
        elif _is_azure(kind):
            provider, price_provider, injects = AZURE_PROVIDER, AZURE_PRICE_PROVIDER, True
        else:
            provider, price_provider, injects = provider_name(text), provider_from_base_url(text), usage_injectable(text)
        info = ClientInfo(url, kind, text, gateway, provider, price_provider, injects)
        if len(_url_cache) > 256:
            _url_cache.clear()
        _url_cache[id(url)] = info
    return info


_azure_classes: dict[type, bool] = {}


def _is_azure(kind: type) -> bool:
    """`AzureOpenAI`, `AsyncAzureOpenAI` or a subclass (they live in `openai.lib.azure` in every
    major), known by class rather than by host: API Management, private endpoints and custom
    domains front Azure OpenAI under any name. Cached per class."""
    azure = _azure_classes.get(kind)
    if azure is None:
        azure = any(getattr(base, "__module__", None) == "openai.lib.azure" for base in kind.__mro__)
        if len(_azure_classes) < 64:
            _azure_classes[kind] = azure
    return azure


# Client classes whose `base_url` property returns their `_base_url` attribute as is (checked
# once per class). openai 3.x's property imports a module on every read: 3 us a call.
_plain_base_url: dict[type, bool] = {}


def _base_url(instance: Any) -> Any:
    url = instance.base_url
    kind = type(instance)
    if kind not in _plain_base_url and len(_plain_base_url) < 64:
        own = getattr(instance, "__dict__", None)
        _plain_base_url[kind] = url is not None and own is not None and own.get("_base_url") is url
    return url


def _begin(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Call | None, tuple[Any, ...]]:
    """Decide whether this request is ours and open its span.

    Returns the call (None: pass through) and the positional args to call the SDK with (a copy
    of the options when we add stream usage or gateway fields).
    """
    hooks = _hooks
    if hooks is None or _in_flight.get() is not None:
        return None, args
    options: Any = args[1] if len(args) > 1 else kwargs.get("options")
    op = OPERATIONS.get(getattr(options, "url", None))  # type: ignore[arg-type]
    if op is None or options.method.lower() != "post":
        return None, args
    body = options.json_data
    if type(body) is not dict and not isinstance(body, Mapping):
        return None, args
    ctx = _span.current()
    if ctx and _span.suppressed(ctx):  # (an empty context, the usual one, is falsy)
        return None, args
    stream = bool(kwargs.get("stream") if "stream" in kwargs else (len(args) > 2 and args[2]))
    headers = options.headers
    deferred = (type(headers) is dict or isinstance(headers, Mapping)) and headers.get(
        RAW_RESPONSE_HEADER
    ) == "stream"
    try:
        kind = type(instance)
        url = instance.__dict__.get("_base_url") if _plain_base_url.get(kind) else None
        if url is None:
            url = _base_url(instance)
        info = _url_cache.get(id(url))
        if info is None or info.url is not url or info.kind is not kind:
            info = _client_info(url, kind, hooks)
        scope = _scope()  # the defaults are merged in later (by the worker when lean)
        sent: Mapping[str, Any] = body
        if info.gateway:  # attributes() values go to the gateway as top-level body fields
            if hooks.defaults:
                scope = _context.merge(hooks.defaults, scope) if scope else hooks.defaults
            fields = {key: scope[key] for key in GATEWAY_FIELDS if key in scope}
            if fields:
                sent = {**fields, **body}  # the caller's own fields win
        injected = stream and op is not RESPONSES and info.injects_usage and _wants_usage(body)
        if injected:
            sent = {**sent, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
        sent_args = _with_body(args, kwargs, options, sent) if sent is not body else args
        call = Call(hooks, op, body, scope, info, ctx)  # the log records what the user sent
        call.is_stream, call.deferred, call.injected = stream, deferred, injected
        return call, sent_args
    except Exception as exc:  # noqa: BLE001 - ours: the call goes on uninstrumented, as sent
        if "options" in kwargs:
            kwargs["options"] = options
        _IN_STARTING_CALL.swallow(exc)
    return None, args


def _sync_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call, args = _begin(instance, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    token = _in_flight.set(call)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        _in_flight.reset(token)
    return call.returned(result, False)


async def _async_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call, args = _begin(instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    token = _in_flight.set(call)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        _in_flight.reset(token)
    return call.returned(result, True)


def _note_response(call: Call, kwargs: dict[str, Any]) -> None:
    response = kwargs.get("response")
    call.http = response
    if call.gateway and response is not None:
        with contained("reading the gateway log id"):
            call.log_id = response.headers.get(GATEWAY_LOG_ID_HEADER)


def _sync_process_response(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _in_flight.get()
    if call is not None:
        _note_response(call, kwargs)
    return wrapped(*args, **kwargs)


async def _async_process_response(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _in_flight.get()
    if call is not None:
        _note_response(call, kwargs)
    return await wrapped(*args, **kwargs)


TARGETS = (
    Target("openai._base_client", "SyncAPIClient.request", _sync_request),
    Target("openai._base_client", "AsyncAPIClient.request", _async_request),
    Target("openai._base_client", "SyncAPIClient._process_response", _sync_process_response),
    Target("openai._base_client", "AsyncAPIClient._process_response", _async_process_response),
)


def set_hooks(hooks: Hooks | None) -> None:
    global _hooks
    _hooks = hooks
    _url_cache.clear()  # what a URL means (gateway or not) depends on the settings


# Client classes that some other instrumentations give a `request` of their own, which would
# hide our patch of the base class: when present, we wrap those too (the in-flight guard
# keeps it to one record per call).
SHADOWING_TARGETS = (
    Target("openai", "OpenAI.request", _sync_request),
    Target("openai", "AsyncOpenAI.request", _async_request),
)


def _shadowing() -> list[Target]:
    module = sys.modules.get("openai")
    found = []
    for target in SHADOWING_TARGETS:
        cls = getattr(module, target.name.split(".")[0], None)
        if cls is not None and "request" in vars(cls):
            found.append(target)
    return found


def apply() -> None:
    """Wrap every target once; safe to call again."""
    if _handles:
        return
    for target in (*TARGETS, *_shadowing()):
        try:
            handle = wrapt.wrap_function_wrapper(target.module, target.name, target.wrapper)
        except (ImportError, AttributeError) as exc:
            log_once(
                f"patch:{target.name}",
                "respan_instrument: cannot patch %s.%s in this openai version (%s); "
                "those calls will not be recorded",
                target.module,
                target.name,
                exc,
            )
            continue
        _handles.append((target, handle))


def remove() -> None:
    """Unwrap by handle, which works even when another tool wrapped on top of us."""
    while _handles:
        target, handle = _handles.pop()
        module = sys.modules.get(target.module)
        if module is None:
            continue
        with contained("removing a patch"):
            wrapt.unwrap_object(module, target.name, handle, missing_ok=True)


def when_openai_imported(callback: Callable[[Any], None]) -> None:
    """Run `callback` now if openai is imported, else right after it is."""
    if "openai" in sys.modules and "openai._base_client" in sys.modules:
        callback(sys.modules["openai"])
    else:
        wrapt.register_post_import_hook(callback, "openai")
