"""The OpenTelemetry `BaseInstrumentor` that `opentelemetry-instrument` loads as `respan_openai`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

# the module opts out of type checking as a whole, so mypy sees no BaseInstrumentor in it
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ._errors import logger
from ._setup import instrument, uninstrument
from .capture import metrics as _metrics

# what BaseInstrumentor.instrument() checks against the installed distributions
_INSTRUMENTS = ("openai >= 1.40, < 4",)


class RespanOpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records every `openai` SDK call as a span and delivers a request log for it to Respan.

    Registered under the `opentelemetry_instrumentor` entry point as `respan_openai`, so
    `opentelemetry-instrument python app.py` loads it with no code change, and
    `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=respan_openai` turns it off. Settings come from the
    same `RESPAN_*` environment variables as `respan_instrument.instrument()`.

    Manual use:

        RespanOpenAIInstrumentor().instrument(tracer_provider=provider, meter_provider=meters)
        ...
        RespanOpenAIInstrumentor().uninstrument()
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        _metrics.set_default_provider(kwargs.get("meter_provider"))
        try:
            instrument(tracer_provider=kwargs.get("tracer_provider"))
        except ValueError as exc:
            # a bad RESPAN_* variable must not stop the application that opentelemetry-instrument runs
            logger.error("respan_instrument: openai calls are not instrumented: %s", exc)

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
        _metrics.set_default_provider(None)
