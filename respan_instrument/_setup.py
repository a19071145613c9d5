"""The one place that wires everything: settings -> tracing/exporter -> patches."""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import TracerProvider

from ._config import PUBLIC_GATEWAY_URL, Settings, env_number, load_settings, sdk_disabled
from ._context import current as current_attributes
from ._context import validate
from ._errors import background_thread_begins, log_once, logger
from ._spool_dirs import fallback_dir, resolve_dir
from .capture import agents_tracing as _agents
from .capture import patch as _patch
from .capture.content import SpanContent
from .capture.span import Tracing
from .capture.traced_call import Hooks
from .deliver import workers as _workers
from .deliver.destination import Destination
from .deliver.http import RETRY_BASE, RETRY_CAP
from .deliver.pipeline import SCHEDULE_DELAY, Pipeline
from .deliver.respan import BULK_PER_MINUTE, RespanLogs
from .endpoints.price_units import UNIT_PRICE_KEYS
from .record.call_record import CallRecord
from .record.encoders import RequestLogEncoder
from .record.manual import validate_manual
from .record.prices import PriceBook
from .record.privacy import Manual, Privacy
from .record.worker_memory import WorkerMemory


class _State:
    def __init__(self, settings: Settings, exporter: Pipeline | None) -> None:
        self.settings = settings
        self.exporter = exporter


_lock = threading.RLock()
_state: _State | None = None
_atexit_registered = False
_warming: threading.Thread | None = None


def _discard(record: CallRecord) -> None:
    return None


def _exporter(settings: Settings, price_book: PriceBook) -> Pipeline | None:
    """The pipeline to the destination the settings choose, or None when there is none."""
    export = settings.export
    if export == "otlp":
        from .record.otlp_span import available

        if not available():
            log_once(
                "no-otlp",
                "respan_instrument: export=otlp needs the OpenTelemetry OTLP encoder "
                "(pip install 'respan-instrument[otlp]'); sending request logs instead",
            )
            export = "logs"
    if export == "logs" and not settings.api_key:
        log_once(
            "no-key", "respan_instrument: no RESPAN_API_KEY; calls are traced but no logs are sent to Respan"
        )
        return None
    content: dict[str, Any] = {
        "privacy": _privacy(settings),
        "prices": price_book,
        "defaults": settings.defaults,
        "seen": WorkerMemory(),
        "max_content_bytes": settings.max_content_bytes,
    }
    per_minute = env_number("RESPAN_BULK_PER_MINUTE", BULK_PER_MINUTE)
    destination: Destination
    if export == "otlp":
        from .deliver.otlp_traces import OtlpTraces
        from .record.otlp_span import SpanEncoder

        destination = OtlpTraces(
            settings.otlp_endpoint,
            settings.api_key,
            encoder=SpanEncoder(**content),
            per_minute=per_minute,
            read_timeout=settings.read_timeout,
        )
    else:
        destination = RespanLogs(
            settings.base_url,
            str(settings.api_key),
            encoder=RequestLogEncoder(**content),
            per_minute=per_minute,
            read_timeout=settings.read_timeout,
        )
    return Pipeline(
        destination,
        spool_dir=resolve_dir(settings.spool_dir),
        fallback_dir=fallback_dir(),
        spool_max_mb=settings.spool_max_mb,
        schedule_delay=env_number("RESPAN_SCHEDULE_DELAY", SCHEDULE_DELAY),
        retry_base=env_number("RESPAN_RETRY_BASE", RETRY_BASE),
        retry_cap=env_number("RESPAN_RETRY_CAP", RETRY_CAP),
    )


def _privacy(settings: Settings) -> Privacy:
    """The content settings; the built-in redactor for `redact="pii"`."""
    redactor = settings.redact
    if redactor == "pii":
        from .record.pii import redact as redactor
    return Privacy(settings.capture_content, settings.sample_rate, redactor)  # type: ignore[arg-type]


def instrument(
    api_key: str | None = None,
    base_url: str | None = None,
    capture_content: bool | None = None,
    tracer_provider: TracerProvider | None = None,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    attributes: Mapping[str, Any] | None = None,
    export: str | None = None,
    agents: str | None = None,
    redact: Callable[[str], str] | str | None = None,
    sample_rate: float | None = None,
) -> None:
    """Record every `openai` SDK call as a span and deliver a request log for it to Respan.

    Safe to call before or after `import openai`, and more than once: a later call with other
    settings replaces the earlier ones.

    Args:
        api_key: Respan API key; defaults to `RESPAN_API_KEY`. Without one, nothing is sent.
        base_url: Respan API root; defaults to `RESPAN_BASE_URL` or https://api.respan.ai/api.
        capture_content: record prompts and completions; defaults to `RESPAN_CAPTURE_CONTENT`
            (true). When false every metric is still recorded.
        tracer_provider: an OpenTelemetry SDK `TracerProvider` for our spans; defaults to the
            application's global one, or a private provider when it has none.
        prices: per-model USD prices per 1M tokens that win over `genai-prices`, e.g.
            `{"ft:gpt-4o-mini": {"input": 0.3, "output": 1.2, "cached_input": 0.15}}`, and/or per
            unit (`per_image`, `per_audio_minute`, `per_1m_characters`) over OpenAI's published ones.
        attributes: default `attributes()` values for every call (e.g. `{"metadata": {"env": "prod"}}`).
        export: `"logs"` (request logs to Respan's logging API) or `"otlp"` (OTLP/HTTP spans to
            `RESPAN_OTLP_ENDPOINT`, default `{base_url}/v2/traces`; needs the `otlp` extra);
            defaults to `RESPAN_EXPORT`, else `"logs"`.
        agents: OpenAI Agents SDK runs are traced (workflow, agents, tools, handoffs, guardrails,
            each model call once) beside the SDK's own trace exporter (`"on"`, the default), or
            instead of it (`"exclusive"`: the run goes to Respan only); defaults to
            `RESPAN_AGENTS_EXCLUSIVE` (true: `"exclusive"`).
        redact: a function given each content string (messages, input, output, tool arguments
            and results, instructions) that returns the text to keep, or `"pii"` for the
            built-in patterns (e-mail addresses, phone numbers, payment cards, IBANs, API keys
            and bearer tokens become `[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`, `[SECRET]`), or
            `"off"`; defaults to `RESPAN_REDACT`, else off. It runs on the background writer.
        sample_rate: the fraction (0 to 1) of traces whose calls keep their content; the others
            are logged with every metric and no content. Defaults to `RESPAN_SAMPLE_RATE`, else 1.

    Raises:
        ValueError: a setting (argument or environment variable, named in the message) is invalid.
    """
    global _state, _atexit_registered, _warming
    if sdk_disabled():
        logger.debug("respan_instrument: OTEL_SDK_DISABLED is true; not instrumenting")
        return
    settings = load_settings(
        api_key=api_key,
        base_url=base_url,
        capture_content=capture_content,
        prices=prices,
        defaults=validate(attributes or {}, "instrument"),
        export=export,
        agents=agents,
        redact=redact,
        sample_rate=sample_rate,
        unit_price_keys=UNIT_PRICE_KEYS.values(),
    )
    with _lock:
        if _state is not None and _state.settings == settings and tracer_provider is None:
            return
        old, _state = _state, None
        if old is not None and old.exporter is not None:
            old.exporter.shutdown(timeout=settings.exit_timeout)
        price_book = PriceBook(settings.prices)
        exporter = _exporter(settings, price_book)
        _state = _State(settings, exporter)
        # Load genai-prices off the caller's thread so the first call does not pay for it. It
        # imports httpx2, which openai 2.x probes in sys.modules without importing: finish that
        # import here first, so no call can ever see it half-initialised.
        openai_module = sys.modules.get("openai")
        probes = openai_module is None or not str(getattr(openai_module, "__version__", "")).startswith("1.")
        if probes and "httpx2" not in sys.modules and importlib.util.find_spec("httpx2") is not None:
            importlib.import_module("httpx2")
        _warming = threading.Thread(target=_warm, args=(price_book,), name="respan-prices", daemon=True)
        _warming.start()
        _workers.watch(exporter, settings.exit_timeout)
        _patch.set_hooks(
            Hooks(
                tracing=Tracing(tracer_provider),
                prices=price_book,
                sink=exporter.submit if exporter is not None else _discard,
                defaults=settings.defaults,
                gateway_urls=frozenset({settings.base_url, PUBLIC_GATEWAY_URL}),
                # no content on the app's spans while a redactor is set (capture/content.py)
                content=(
                    SpanContent(settings.max_content_bytes, settings.capture_content, settings.sample_rate)
                    if settings.redact is None
                    else None
                ),
            )
        )
        _patch.when_openai_imported(_on_openai)
        _agents.install(exporter.submit if exporter is not None else _discard, settings.agents_exclusive)
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True


def _warm(price_book: PriceBook) -> None:
    background_thread_begins()
    price_book.warm()


def _on_openai(module: Any) -> None:
    with _lock:
        if _state is not None:
            _patch.apply()


def uninstrument() -> None:
    """Restore every patched method and deliver what is pending (bounded in time)."""
    global _state
    with _lock:
        _patch.remove()
        _patch.set_hooks(None)
        _agents.uninstall()
        old, _state = _state, None
        _workers.watch(None, 0.0)
    if old is not None and old.exporter is not None:
        old.exporter.shutdown(timeout=old.settings.exit_timeout)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every call finished so far is delivered to Respan.

    Returns:
        True when every log this process knows of (its own calls, and spooled logs found at
        start-up) was accepted by Respan within `timeout` seconds, or, while Respan is not
        accepting, is safely in the on-disk spool. False on timeout or if a log was dropped.
    """
    state = _state
    if state is None or state.exporter is None:
        return True
    return state.exporter.flush(timeout)


def log(**fields: Any) -> None:
    """Send a hand-built request log (any Respan request-log field; `model` is required)."""
    payload = validate_manual(fields)
    state = _state
    if state is None or state.exporter is None:
        log_once("log-no-exporter", "respan_instrument: log() before instrument() or without a key; dropped")
        return
    capture = current_attributes().get("capture_content")  # attributes(capture_content=...)
    state.exporter.submit(payload if capture is None else Manual(payload, capture))


def _at_exit() -> None:
    state = _state
    if state is not None and state.exporter is not None:
        state.exporter.shutdown(timeout=state.settings.exit_timeout)


def _before_fork() -> None:
    # The price warm-up imports modules on its thread; a child forked meanwhile inherits their
    # import locks held and deadlocks at its first import of one (a Pool forked right after
    # instrument() hung so). Let it finish first, bounded.
    warming = _warming
    if warming is not None and warming.is_alive() and warming is not threading.current_thread():
        warming.join(5.0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)
