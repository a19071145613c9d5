"""The patch table and the thin sync/async shells around the SDK's request choke point.

We patch `SyncAPIClient.request` and `AsyncAPIClient.request` (same signature in openai 1.x, 2.x
and 3.x), and dispatch on the endpoint path. Every resource method, `with_raw_response` wrapper
(even ones a client cached before `instrument()`), `parse()` helper and Azure client goes
through it exactly once per call.
"""

from __future__ import annotations

import contextvars
import copy
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import wrapt

from .. import _context
from .._errors import contained, log_once
from ..endpoints import ENDPOINTS, routed
from ..endpoints.providers import (
    AZURE_PRICE_PROVIDER,
    AZURE_PROVIDER,
    GATEWAY_PROVIDER,
    price_provider,
    provider_name,
    usage_injectable,
)
from . import agents_run as _agents_run
from . import body_timing as _body_timing
from . import live_socket as _live
from . import realtime_socket as _realtime
from . import responses_socket as _responses_socket
from . import sockets as _sockets
from . import span as _span
from . import translation_socket as _translation
from .files import describe_files
from .traced_call import GATEWAY_LOG_ID_HEADER, Call, ClientInfo, Hooks

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_IN_STARTING_CALL = contained("starting a call")


class Target(NamedTuple):
    module: str
    name: str
    wrapper: Callable[..., Any]


# Respan fields the gateway reads from the request body (attributes() values)
GATEWAY_FIELDS = (*_context.LOG_FIELDS, _context.CREDENTIALS)
# The call whose request() is running in this context. It keeps a call from being recorded
# twice when another tool's wrapper sits between two of ours, and lets _process_response find
# the gateway call it belongs to.
_in_flight: contextvars.ContextVar[Call | None] = contextvars.ContextVar("respan_call", default=None)
_hooks: Hooks | None = None
_handles: list[tuple[Target, Any]] = []


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


_url_cache: dict[int, ClientInfo] = {}
_scope = _context.current_reader()


def _client_info(url: Any, kind: type, hooks: Hooks) -> ClientInfo:
    """What we derive from a client's base URL and class, cached per URL object."""
    info = _url_cache.get(id(url))
    if info is None or info.url is not url or info.kind is not kind:
        text = str(url)
        gateway = text.rstrip("/") in hooks.gateway_urls
        if gateway:
            provider, prices_by, injects = GATEWAY_PROVIDER, price_provider(text), True
        elif _is_azure(kind):
            provider, prices_by, injects = AZURE_PROVIDER, AZURE_PRICE_PROVIDER, True
        else:
            provider, prices_by, injects = provider_name(text), price_provider(text), usage_injectable(text)
        info = ClientInfo(url, kind, text, gateway, provider, prices_by, injects)
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


# Per client class, the instance attribute its `base_url` property returns as is, or None
# (checked once per class): `_base_url` up to openai 2.x, `_configured_base_url` in 3.x, whose
# property imports a module on every read, which costs more than the rest of our check.
_plain_base_url: dict[type, str | None] = {}
_BASE_URL_ATTRIBUTES = ("_base_url", "_configured_base_url")


def _base_url(instance: Any) -> Any:
    url = instance.base_url
    kind = type(instance)
    if kind not in _plain_base_url and len(_plain_base_url) < 64:
        own = getattr(instance, "__dict__", None)
        held = None
        if url is not None and own is not None:
            held = next((name for name in _BASE_URL_ATTRIBUTES if own.get(name) is url), None)
        _plain_base_url[kind] = held
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
    path = getattr(options, "url", None)
    endpoint = ENDPOINTS.get(path)  # type: ignore[arg-type]
    if endpoint is not None:
        if options.method.lower() not in endpoint.methods:
            return None, args
        body = options.json_data
        if type(body) is not dict and not isinstance(body, Mapping):
            return None, args
    else:  # a URL naming an object (`/responses/{id}`) or carrying a query string
        found = routed(path, options.method.lower()) if type(path) is str else None
        if found is None:
            return None, args
        endpoint, object_id = found
        body = options.json_data
        if object_id is not None:
            body = {**body, "id": object_id} if isinstance(body, Mapping) else {"id": object_id}
        elif type(body) is not dict and not isinstance(body, Mapping):
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
        held = _plain_base_url.get(kind)
        url = instance.__dict__.get(held) if held is not None else None
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
            if fields and body is options.json_data:  # (not a call that sends no body)
                sent = {**fields, **body}  # the caller's own fields win
        # (not where the app may read the body's bytes itself: they would show the extra chunk)
        injected = (
            stream and not deferred and endpoint.stream_usage and info.injects_usage and _wants_usage(body)
        )
        if injected:
            sent = {**sent, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
        sent_args = _with_body(args, kwargs, options, sent) if sent is not body else args
        call = Call(hooks, endpoint, body, scope, info, ctx)  # the log records what the user sent
        call.is_stream, call.deferred, call.injected = stream, deferred, injected
        spans = _agents_run.active
        if spans is not None:  # (only once the Agents SDK is imported) inside one of its runs?
            run = _agents_run.current_trace.get()
            if run is not None:
                call.record.anchor = spans.anchor(_agents_run.current_span.get(), run)
        call.record.stream = stream  # (a stream that fails before its first chunk is a stream too)
        events = endpoint.events_when
        if events is not None and not stream and body.get(events[0]) == events[1]:
            call.record.stream = True  # an event stream the SDK returns whole (body_timing.py)
            _time_bodies()
        files = options.files
        if files is not None:  # multipart: the log shows what was sent, never the bytes
            call.record.files = describe_files(files)
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


# the SDK's WebSocket protocols, each read by its recorder
SOCKETS = _sockets.patches(
    (_realtime.PROTOCOL, _responses_socket.PROTOCOL, _live.PROTOCOL, _translation.PROTOCOL)
)


def _sync_send_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _body_timing.sync_send(wrapped, instance, args, kwargs, _in_flight.get())


async def _async_send_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return await _body_timing.async_send(wrapped, instance, args, kwargs, _in_flight.get())


# Applied the first time a call's body needs timing, so that no other call pays for them; the
# SDK has this seam from openai 2.x on.
SEND_TARGETS = (
    Target("openai._base_client", "SyncAPIClient._send_request", _sync_send_request),
    Target("openai._base_client", "AsyncAPIClient._send_request", _async_send_request),
)


def _time_bodies() -> None:
    if not _handles or any(target in SEND_TARGETS for target, _ in _handles):
        return
    base = sys.modules.get("openai._base_client")
    if base is None or not hasattr(getattr(base, "SyncAPIClient", None), "_send_request"):
        return
    for target in SEND_TARGETS:
        _handles.append((target, wrapt.wrap_function_wrapper(target.module, target.name, target.wrapper)))


def set_hooks(hooks: Hooks | None) -> None:
    global _hooks
    _hooks = hooks
    _sockets.set_hooks(hooks)
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
    for socket in SOCKETS:
        socket.apply()
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
    for socket in SOCKETS:
        socket.remove()
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
