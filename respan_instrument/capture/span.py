"""Span lifetime: which tracer, suppression, and ending a span with its outcome. No openai import."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

from .. import _semconv as sc
from .._config import tracer_provider_env
from .._version import __version__
from ..record.settle import ids

SCOPE = "respan_instrument"
_SUPPRESS_KEY = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
_NO_OP_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def _context_reader() -> Callable[[], otel_context.Context]:
    """The fastest way to read the current context: the runtime's contextvar itself when the
    runtime is the API's default one (three Python frames fewer per call), else the API."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(var, contextvars.ContextVar) and type(runtime).__name__ == "ContextVarsRuntimeContext":
        return var.get
    return otel_context.get_current


current = _context_reader()


def suppressed(ctx: otel_context.Context) -> bool:
    """True inside `opentelemetry.instrumentation.utils.suppress_instrumentation()`."""
    if not ctx:
        return False
    return bool(ctx.get(_SUPPRESS_KEY) or ctx.get("suppress_instrumentation"))  # type: ignore[arg-type]


class Tracing:
    """Chooses where spans go: the provider given, else the application's global one.

    When the application has no tracer provider at all, nobody could ever read our span's
    attributes, so we do what a private provider without processors would amount to, only
    cheaper: a span context with fresh W3C ids (a child of the current span, if any), made
    current for the duration of the call. Nothing is ever installed as the global provider.
    """

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._explicit = provider.get_tracer(SCOPE, __version__) if provider is not None else None
        self._seen_global: object = None
        self._tracer: Tracer | None = self._explicit
        # While the application sets no provider, get_tracer_provider() looks the environment
        # up on every call; we read the API's global instead unless the environment names one.
        self._peek = hasattr(trace, "_TRACER_PROVIDER") and not tracer_provider_env()

    def tracer(self) -> Tracer | None:
        """The tracer for the next span, or None when spans would reach nobody."""
        if self._explicit is not None:
            return self._explicit
        if self._peek:
            provider = trace._TRACER_PROVIDER
            if provider is None:
                return None
        else:
            provider = trace.get_tracer_provider()
        if provider is not self._seen_global:
            self._tracer = (
                None if isinstance(provider, _NO_OP_PROVIDERS) else provider.get_tracer(SCOPE, __version__)
            )
            self._seen_global = provider
        return self._tracer


def start(
    tracer: Tracer | None, name: str, attributes: dict[str, Any], start_ns: int, ctx: otel_context.Context
) -> tuple[trace.Span | None, object, int, int, int]:
    """Start a CLIENT span as a child of the current one and make it current.

    Returns (span, context token to detach, trace id, span id, parent span id or 0).
    With no tracer nobody can see a span, so there is none: only fresh W3C ids (in the
    caller's trace when there is one), and nothing to attach.
    """
    if tracer is None:
        return (None, None, *ids(ctx))
    parent = trace.get_current_span(ctx).get_span_context()
    parent_id = parent.span_id if parent.is_valid else 0
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns)
    token = otel_context.attach(trace.set_span_in_context(span))
    own = span.get_span_context()
    return span, token, own.trace_id, own.span_id, parent_id


def attach(span: trace.Span) -> object:
    return otel_context.attach(trace.set_span_in_context(span))


def detach_quietly(token: object) -> None:
    """Detach a token that may belong to another context (a stream finished elsewhere, or by
    the garbage collector): then there is nothing of ours to undo in this one."""
    if token is None:
        return
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    try:
        if runtime is not None:
            runtime.detach(token)
        else:
            otel_context.detach(token)  # type: ignore[arg-type]
    except (ValueError, RuntimeError):
        pass


def detach(token: object) -> None:
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


def end_ok(span: trace.Span | None, attributes: dict[str, Any], end_ns: int) -> None:
    if span is None:
        return
    if attributes:
        span.set_attributes(attributes)
    span.end(end_ns)


def end_error(span: trace.Span | None, exc: BaseException, end_ns: int) -> None:
    if span is None:
        return
    span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.end(end_ns)
