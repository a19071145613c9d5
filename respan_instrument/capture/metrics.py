"""OpenTelemetry GenAI client metrics, recorded once per call; free when no MeterProvider is set."""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, MeterProvider
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_TOKEN_TYPE
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _m

from .. import _semconv as sc
from .._config import meter_provider_env
from .._version import __version__
from ..endpoints import Endpoint
from ..endpoints.usage import TokenUsage

SCOPE = "respan_instrument"

OPERATION_DURATION: str = _m.GEN_AI_CLIENT_OPERATION_DURATION
TOKEN_USAGE: str = _m.GEN_AI_CLIENT_TOKEN_USAGE
# absent from older opentelemetry-semantic-conventions releases
TIME_TO_FIRST_CHUNK: str = getattr(
    _m, "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK", "gen_ai.client.operation.time_to_first_chunk"
)
COST = "respan.client.cost"
TOKEN_TYPE = GEN_AI_TOKEN_TYPE

# bucket boundaries the GenAI semantic conventions recommend
_SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = tuple(float(4**k) for k in range(14))  # 1, 4, 16, ... 67108864

# the API's stand-in until the application sets a MeterProvider (not exported publicly)
_PROXY: type[MeterProvider] = getattr(_metrics_api, "_ProxyMeterProvider", metrics.NoOpMeterProvider)
_NO_OP_PROVIDERS = (metrics.NoOpMeterProvider, _PROXY)
# The API's global itself: while none is set, get_meter_provider() looks the environment up on
# every call (most of what record() costs then), so we read the global and ask the API
# only when the environment names a provider for it to load.
_GLOBAL_READABLE = hasattr(_metrics_api, "_METER_PROVIDER")


def _is_no_op(provider: MeterProvider) -> bool:
    # the API's proxy provider (nothing set yet) and its no-op provider: nobody reads our instruments
    return isinstance(provider, _NO_OP_PROVIDERS)


class _Instruments(NamedTuple):
    duration: Histogram
    tokens: Histogram
    time_to_first_chunk: Histogram
    cost: Counter


def _create(provider: MeterProvider) -> _Instruments:
    meter = provider.get_meter(SCOPE, __version__)
    return _Instruments(
        duration=meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        ),
        tokens=meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        ),
        time_to_first_chunk=meter.create_histogram(
            TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from issuing a streamed request to the first chunk carrying output.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        ),
        cost=meter.create_counter(COST, unit="USD", description="Cost of GenAI calls in US dollars."),
    )


_default_provider: MeterProvider | None = None


def set_default_provider(provider: MeterProvider | None) -> None:
    """The provider for `Metrics()` built without one (the `meter_provider` given to our
    BaseInstrumentor); None goes back to the application's global MeterProvider."""
    global _default_provider
    _default_provider = provider


class Metrics:
    """The GenAI client metrics of every call, on the provider given, else the global one.

    Instruments are created once per provider and cached by the provider's identity (as
    `_span.Tracing` does for tracers), so an application that sets its MeterProvider after
    `instrument()` is picked up on the next call. While there is no MeterProvider, `record()`
    returns after one identity check.
    """

    __slots__ = ("_explicit", "_peek", "_cache", "_lock")

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        self._explicit = meter_provider
        self._peek = _GLOBAL_READABLE and not meter_provider_env()
        self._cache: tuple[object, _Instruments | None] = (None, None)
        self._lock = threading.Lock()

    def _resolve(self, provider: MeterProvider) -> _Instruments | None:
        with self._lock:
            seen, instruments = self._cache
            if seen is not provider:
                instruments = None if _is_no_op(provider) else _create(provider)
                self._cache = (provider, instruments)
            return instruments

    def _instruments(self) -> _Instruments | None:
        """Our instruments on the provider in force; None when nobody would read them."""
        meter_provider = self._explicit or _default_provider
        if meter_provider is None:
            if self._peek:
                meter_provider = _metrics_api._METER_PROVIDER
                if meter_provider is None:
                    return None  # the application has no MeterProvider
            else:
                meter_provider = metrics.get_meter_provider()
        seen, instruments = self._cache
        if meter_provider is not seen:
            instruments = self._resolve(meter_provider)
        return instruments

    def idle(self) -> bool:
        """True when a call's metrics would reach nobody (no MeterProvider, or a no-op one)."""
        return self._instruments() is None

    def record(
        self,
        endpoint: Endpoint,
        provider: str,
        request_model: str | None,
        response_model: str | None,
        duration_s: float,
        usage: TokenUsage | None,
        ttft_s: float | None,
        cost: float | None,
        error_type: str | None,
    ) -> None:
        """Record one finished call.

        Args:
            endpoint: the endpoint called (its `gen_ai.operation.name`, whether it has output tokens).
            provider: `gen_ai.provider.name`.
            request_model: the model the request asked for.
            response_model: the model the response named (None on failures).
            duration_s: seconds from request start to the last byte (or the failure).
            usage: token counts as the provider reported them; None when it sent none.
            ttft_s: streams only: seconds to the first chunk carrying output.
            cost: USD, None when unknown (nothing is added to the cost counter then).
            error_type: `error.type` of a failed call (the exception's qualified name), else None.
        """
        instruments = self._instruments()
        if instruments is None:
            return
        attrs: dict[str, Any] = {sc.OPERATION_NAME: endpoint.operation, sc.PROVIDER_NAME: provider}
        if request_model:
            attrs[sc.REQUEST_MODEL] = request_model
        if response_model:
            attrs[sc.RESPONSE_MODEL] = response_model
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        instruments.duration.record(duration_s, attrs)
        if ttft_s is not None:
            instruments.time_to_first_chunk.record(ttft_s, attrs)
        if usage is not None:
            instruments.tokens.record(usage.input_tokens, {**attrs, TOKEN_TYPE: "input"})
            if endpoint.output_tokens:
                instruments.tokens.record(usage.output_tokens, {**attrs, TOKEN_TYPE: "output"})
        if cost is not None:
            instruments.cost.add(cost, attrs)
