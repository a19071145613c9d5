"""The patch table and the thin sync/async shells: the only module that names openai internals.

We patch the SDK's single request choke point, `SyncAPIClient.request` and
`AsyncAPIClient.request` (same signature in openai 1.x, 2.x and 3.x), and dispatch on the
endpoint path. Every resource method, `with_raw_response` wrapper (even ones a client cached
before `instrument()`), `parse()` helper and Azure client goes through it exactly once per call.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Mapping, NamedTuple

import wrapt

from . import _context, _span
from ._cost import PriceBook, provider_from_base_url
from ._errors import contained, log_once
from ._operations import OPERATIONS, Operation, outcome, provider_name, request_attributes
from ._record import CallRecord
from ._semconv import COST

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


class Target(NamedTuple):
    module: str
    name: str
    is_async: bool


TARGETS = (
    Target("openai._base_client", "SyncAPIClient.request", False),
    Target("openai._base_client", "AsyncAPIClient.request", True),
)


class Hooks:
    """What the shells need at call time; replaced as a whole by `instrument()`."""

    __slots__ = ("tracing", "prices", "sink", "defaults")

    def __init__(
        self,
        tracing: _span.Tracing,
        prices: PriceBook,
        sink: Callable[[CallRecord], None],
        defaults: Mapping[str, Any],
    ) -> None:
        self.tracing = tracing
        self.prices = prices
        self.sink = sink
        self.defaults = defaults


_hooks: Hooks | None = None
_handles: list[tuple[Target, Any]] = []


class Call:
    """One instrumented call in flight: its span, context token and record."""

    __slots__ = ("hooks", "op", "span", "token", "record", "price_provider")

    def __init__(self, hooks: Hooks, op: Operation, client: Any, options: Any) -> None:
        body = options.json_data
        base_url, provider, self.price_provider = _client_url(client)
        attrs = request_attributes(op, body, provider)
        model = attrs[_span.sc.REQUEST_MODEL]
        scope = _context.current()
        if hooks.defaults:
            scope = _context.merge(hooks.defaults, scope)
        start_ns = time.time_ns()
        name = f"{op.name} {model}"
        self.hooks = hooks
        self.op = op
        self.record = CallRecord(op.log_type, body, base_url, start_ns, name, scope)
        self.span, self.token, self.record.parent_id = hooks.tracing.start(name, attrs, start_ns)
        ctx = self.span.get_span_context()
        self.record.trace_id, self.record.span_id = ctx.trace_id, ctx.span_id

    def succeed(self, result: Any) -> Any:
        end_ns = time.time_ns()
        _span.detach(self.token)
        with contained("finishing a call"):
            response = _parsed(result)
            record = self.record
            record.end_ns = end_ns
            record.response = response
            attrs, usage, model, tier = outcome(self.op, response)
            if usage is not None:
                record.cost = self.hooks.prices.cost(
                    model or record.body.get("model") or "",
                    usage,
                    provider=self.price_provider,
                    service_tier=tier,
                )
                if record.cost is not None:
                    attrs[COST] = record.cost
            _span.end_ok(self.span, attrs, end_ns)
            self.hooks.sink(record)
        return result

    def fail(self, exc: BaseException) -> None:
        end_ns = time.time_ns()
        _span.detach(self.token)
        with contained("recording a failed call"):
            self.record.end_ns = end_ns
            self.record.error = exc
            _span.end_error(self.span, exc, end_ns)
            self.hooks.sink(self.record)


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
        except Exception:  # the user's own parse() will raise the same; log what we have
            return None
    return result


_url_cache: dict[int, tuple[Any, str, str, str | None]] = {}


def _client_url(client: Any) -> tuple[str, str, str | None]:
    """(base URL, gen_ai provider name, genai-prices provider id), cached per URL object."""
    url = client.base_url
    entry = _url_cache.get(id(url))
    if entry is None or entry[0] is not url:
        text = str(url)
        entry = (url, text, provider_name(text), provider_from_base_url(text))
        if len(_url_cache) > 256:
            _url_cache.clear()
        _url_cache[id(url)] = entry
    return entry[1], entry[2], entry[3]


def _begin(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
    """Decide whether this request is ours and open its span; None means pass through."""
    hooks = _hooks
    if hooks is None:
        return None
    options = args[1] if len(args) > 1 else kwargs.get("options")
    op = OPERATIONS.get(getattr(options, "url", None))  # type: ignore[arg-type]
    if op is None or options.method.lower() != "post":
        return None
    if kwargs.get("stream") or (len(args) > 2 and args[2]):
        return None  # streams are handled by their own path (not yet)
    headers = options.headers
    if isinstance(headers, Mapping) and headers.get(RAW_RESPONSE_HEADER) == "stream":
        return None  # with_streaming_response: body read later by the user
    if not isinstance(options.json_data, Mapping) or _span.suppressed():
        return None
    with contained("starting a call"):
        return Call(hooks, op, instance, options)
    return None


def _sync_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _begin(instance, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    return call.succeed(result)


async def _async_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _begin(instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    return call.succeed(result)


def set_hooks(hooks: Hooks | None) -> None:
    global _hooks
    _hooks = hooks


def apply() -> None:
    """Wrap every target once; safe to call again."""
    if _handles:
        return
    for target in TARGETS:
        wrapper = _async_request if target.is_async else _sync_request
        try:
            handle = wrapt.wrap_function_wrapper(target.module, target.name, wrapper)
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
