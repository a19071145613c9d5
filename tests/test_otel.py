"""OpenTelemetry ecosystem fit: `opentelemetry-instrument`, the BaseInstrumentor with a user's
TracerProvider and MeterProvider, GenAI metrics, suppression, and another openai instrumentation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import OPENAI_KEY, RESPAN_KEY, delivered
from opentelemetry import trace
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.trace import SpanKind, StatusCode

import respan_instrument
from respan_instrument.capture import metrics as _metrics
from respan_instrument.endpoints import CHAT
from respan_instrument.endpoints.usage import TokenUsage
from respan_instrument.local import OpenAIStub

USER = [{"role": "user", "content": "hello from an app with no instrumentation code"}]
RESPAN_SCOPE = "respan_instrument"


# -- opentelemetry-instrument, zero code ---------------------------------------------------

APP = """
import os, sys
import openai

client = openai.OpenAI(api_key="sk-app", base_url=os.environ["APP_OPENAI_URL"], max_retries=0)
reply = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "hello from an app with no instrumentation code"}],
)
print("REPLY:", reply.choices[0].message.content)
print("LOADED:", "respan_instrument" in sys.modules)
"""


def run_app(tmp_path: Path, stub: OpenAIStub, base_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RESPAN_"))}
    clean.update(
        APP_OPENAI_URL=stub.base_url,
        RESPAN_API_KEY=RESPAN_KEY,
        RESPAN_BASE_URL=base_url,
        RESPAN_SPOOL_DIR=str(tmp_path / "spool"),  # never drain another test's spool
        RESPAN_INSTRUMENT_STRICT="1",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    clean.update(env)
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    done = subprocess.run(
        [str(launcher), sys.executable, str(app)],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "REPLY: Echo: hello from an app" in done.stdout, done.stdout
    return done


def test_opentelemetry_instrument_loads_respan_openai(tmp_path, stub, collector) -> None:
    # other packages' `openai` instrumentations are off here; coexistence is tested below
    done = run_app(tmp_path, stub, collector.url + "/api", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai")
    assert "LOADED: True" in done.stdout
    # the process has exited, so its exit-time flush is over: what arrived is all there is
    (log,) = collector.logs
    assert log["model"] == "gpt-4o-mini-2024-07-18"
    assert log["prompt_messages"] == USER
    assert log["completion_message"]["content"] == "Echo: hello from an app with no instrumentation code"
    assert log["status"] == "success" and log["prompt_tokens"] > 0


def test_disabled_by_entry_point_name(tmp_path, stub, collector) -> None:
    done = run_app(
        tmp_path, stub, collector.url + "/api", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="requests,respan_openai"
    )
    assert "LOADED: False" in done.stdout  # not even imported
    assert collector.logs == []


def test_bad_environment_does_not_stop_the_app(tmp_path, stub, collector) -> None:
    done = run_app(tmp_path, stub, "not-a-url")
    assert "RESPAN_BASE_URL" in done.stderr and "not instrumented" in done.stderr
    assert collector.logs == []


@pytest.mark.skipif(find_spec("opentelemetry.distro") is None, reason="opentelemetry-distro not installed")
def test_distro_console_exporter_gets_our_span(tmp_path, stub, collector) -> None:
    done = run_app(tmp_path, stub, collector.url + "/api", OTEL_TRACES_EXPORTER="console")
    assert '"name": "chat gpt-4o-mini"' in done.stdout
    assert len(collector.logs) == 1


# -- the instrumentor with a user's providers --------------------------------------------


class Otel(NamedTuple):
    spans: InMemorySpanExporter
    tracer: trace.Tracer
    metrics: InMemoryMetricReader
    instrumentor: Any
    collector: Any


@pytest.fixture()
def otel(collector, stub, monkeypatch) -> Iterator[Otel]:
    stub.clear()
    monkeypatch.setenv("RESPAN_API_KEY", RESPAN_KEY)
    monkeypatch.setenv("RESPAN_BASE_URL", collector.url + "/api")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    instrumentor = respan_instrument.RespanOpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=meters)
    yield Otel(exporter, provider.get_tracer("user-app"), reader, instrumentor, collector)
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    provider.shutdown()
    meters.shutdown()


def ours(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == RESPAN_SCOPE]


def test_instrumentor_is_the_registered_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "respan_openai"]
    assert ep.load() is respan_instrument.RespanOpenAIInstrumentor
    assert respan_instrument.RespanOpenAIInstrumentor().instrumentation_dependencies() == (
        "openai >= 1.40, < 4",
    )
    assert get_dependency_conflicts(("openai >= 1.40, < 4",)) is None  # the installed openai qualifies


def test_spans_on_the_users_provider_under_the_users_span(otel, client) -> None:
    with otel.tracer.start_as_current_span("handle request") as parent:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=0.5)
    (log,) = delivered(otel.collector)
    (span,) = ours(otel.spans)
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is not StatusCode.ERROR
    a = span.attributes
    assert a[ga.GEN_AI_OPERATION_NAME] == "chat"
    assert a[ga.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[ga.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[ga.GEN_AI_RESPONSE_MODEL] == response.model == "gpt-4o-mini-2024-07-18"
    assert a[ga.GEN_AI_RESPONSE_ID] == response.id
    assert a[ga.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert a[ga.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert a[ga.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    assert ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in a  # zero: not recorded
    # a child of the user's span, and the same ids in the Respan log
    ctx, parent_ctx = span.get_span_context(), parent.get_span_context()
    assert span.parent is not None and span.parent.span_id == parent_ctx.span_id
    assert ctx.trace_id == parent_ctx.trace_id
    assert log["trace_unique_id"] == format(ctx.trace_id, "032x")
    assert log["span_unique_id"] == format(ctx.span_id, "016x")
    assert log["span_parent_id"] == format(parent_ctx.span_id, "016x")


@pytest.fixture(scope="module")
def usage_stub() -> Iterator[OpenAIStub]:
    usage = {"prompt_tokens": 40, "completion_tokens": 9, "cached_tokens": 32, "reasoning_tokens": 5}
    with OpenAIStub(usage=usage) as server:
        yield server


def test_cached_and_reasoning_tokens_on_the_span(otel, usage_stub) -> None:
    import openai

    with openai.OpenAI(api_key=OPENAI_KEY, base_url=usage_stub.base_url, max_retries=0) as c:
        c.chat.completions.create(model="o4-mini", messages=USER)
    delivered(otel.collector)
    (span,) = ours(otel.spans)
    a = span.attributes
    assert (a[ga.GEN_AI_USAGE_INPUT_TOKENS], a[ga.GEN_AI_USAGE_OUTPUT_TOKENS]) == (40, 9)
    assert a[ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 32
    assert a[ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 5


def test_uninstrument_through_the_instrumentor(otel, client) -> None:
    from openai._base_client import SyncAPIClient

    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    delivered(otel.collector)
    otel.instrumentor.uninstrument()
    assert not hasattr(SyncAPIClient.__dict__["request"], "__wrapped__")
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert respan_instrument.flush(5)
    assert len(ours(otel.spans)) == 1
    assert len(otel.collector.logs) == 1


def test_suppress_instrumentation_means_no_span_and_no_log(otel, client) -> None:
    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    delivered(otel.collector, 1)
    assert len(ours(otel.spans)) == 1


def test_bad_environment_is_logged_not_raised(collector, monkeypatch, caplog) -> None:
    monkeypatch.setenv("RESPAN_CAPTURE_CONTENT", "maybe")
    instrumentor = respan_instrument.RespanOpenAIInstrumentor()
    with caplog.at_level("ERROR", logger="respan_instrument"):
        instrumentor.instrument()
    try:
        assert any("RESPAN_CAPTURE_CONTENT" in r.getMessage() for r in caplog.records)
    finally:
        instrumentor.uninstrument()


# -- metrics -------------------------------------------------------------------------------


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any, Any]]]:
    """{metric name: [(attributes, data point, metric)]} for our scope."""
    out: dict[str, list[tuple[dict[str, Any], Any, Any]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            if sm.scope.name != RESPAN_SCOPE:
                continue
            for m in sm.metrics:
                out.setdefault(m.name, []).extend((dict(p.attributes), p, m) for p in m.data.data_points)
    return out


def one(points: list[tuple[dict[str, Any], Any, Any]], **attrs: Any) -> Any:
    found = [p for a, p, _ in points if all(a.get(k.replace("__", ".")) == v for k, v in attrs.items())]
    assert len(found) == 1, (attrs, [a for a, _, _ in points])
    return found[0]


def test_metrics_cost_nothing_without_a_meter_provider(monkeypatch) -> None:
    from opentelemetry.metrics import _internal as api

    monkeypatch.setattr(api, "_METER_PROVIDER", None)  # as in a process that never set one
    m = _metrics.Metrics()
    m.record(CHAT, "openai", "m", "m", 0.1, TokenUsage(1, 1), None, 0.1, None)
    assert m._cache == (None, None)  # no instruments were made

    # a provider set later (globally, or through the instrumentor) is picked up on the next call
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(api, "_METER_PROVIDER", provider)
    m.record(CHAT, "openai", "m", "m", 0.1, TokenUsage(1, 1), None, 0.1, None)
    assert "gen_ai.client.operation.duration" in metric_points(reader)
    other = InMemoryMetricReader()
    preferred = MeterProvider(metric_readers=[other])
    _metrics.set_default_provider(preferred)
    try:
        m.record(CHAT, "openai", "m", "m", 0.1, None, None, None, None)
    finally:
        _metrics.set_default_provider(None)
    assert "gen_ai.client.operation.duration" in metric_points(other)
    provider.shutdown()
    preferred.shutdown()


def test_metrics_from_real_calls(otel, client) -> None:
    import openai

    response = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    client.embeddings.create(model="text-embedding-3-small", input="vectors please")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="error-404", messages=USER)
    logs = delivered(otel.collector, 4)
    chats = [log for log in logs if log["log_type"] == "chat" and log["status"] == "success"]
    got = metric_points(otel.metrics)

    duration = got["gen_ai.client.operation.duration"]
    chat_ok = one(duration, gen_ai__operation__name="chat", gen_ai__response__model=response.model)
    assert chat_ok.count == 2 and duration[0][2].unit == "s"
    assert list(chat_ok.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    assert one(duration, gen_ai__operation__name="embeddings").count == 1
    failed = one(duration, error__type="NotFoundError")
    assert failed.count == 1
    tokens = got["gen_ai.client.token.usage"]
    assert tokens[0][2].unit == "{token}"
    chat_in = one(tokens, gen_ai__operation__name="chat", gen_ai__token__type="input")
    chat_out = one(tokens, gen_ai__operation__name="chat", gen_ai__token__type="output")
    assert chat_in.count == chat_out.count == 2
    assert chat_in.sum == sum(log["prompt_tokens"] for log in chats)
    assert chat_out.sum == sum(log["completion_tokens"] for log in chats)
    assert one(tokens, gen_ai__operation__name="embeddings", gen_ai__token__type="input").count == 1
    emb = [a for a, _, _ in tokens if a["gen_ai.operation.name"] == "embeddings"]
    assert [a["gen_ai.token.type"] for a in emb] == ["input"]  # embeddings have no output tokens
    (ttft,) = got["gen_ai.client.operation.time_to_first_chunk"]
    assert ttft[1].count == 1
    assert ttft[1].sum == pytest.approx(next(log["ttft"] for log in chats if log["stream"]), abs=1e-6)
    cost = got["respan.client.cost"]
    assert sum(point.value for _, point, _ in cost) == pytest.approx(sum(log.get("cost", 0) for log in logs))
    assert cost[0][2].unit == "USD"
    assert [a for a, _, _ in cost if a["gen_ai.operation.name"] == "chat"] == [
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": response.model,
        }
    ]


# -- another openai instrumentation at the same time ---------------------------------------


@pytest.fixture()
def restore_client_classes() -> Iterator[None]:
    """Other instrumentations leave `OpenAI.request` behind on uninstrument; put the classes back."""
    import openai

    classes = (openai.OpenAI, openai.AsyncOpenAI)
    saved = [(cls, cls.__dict__.get("request")) for cls in classes]
    yield
    for cls, method in saved:
        if method is None:
            if "request" in cls.__dict__:
                delattr(cls, "request")
        else:
            cls.request = method


@pytest.mark.parametrize("order", ["respan_first", "other_first"])
@pytest.mark.usefixtures("restore_client_classes")
def test_coexists_with_openinference(order, collector, stub, monkeypatch, client) -> None:
    other_module = pytest.importorskip("openinference.instrumentation.openai")
    other = other_module.OpenAIInstrumentor()
    if get_dependency_conflicts(other.instrumentation_dependencies()) is not None:
        pytest.skip("openinference-instrumentation-openai does not support this openai version")
    monkeypatch.setenv("RESPAN_API_KEY", RESPAN_KEY)
    monkeypatch.setenv("RESPAN_BASE_URL", collector.url + "/api")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    respan = respan_instrument.RespanOpenAIInstrumentor()
    first, second = (respan, other) if order == "respan_first" else (other, respan)
    first.instrument(tracer_provider=provider)
    second.instrument(tracer_provider=provider)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True).close()
        logs = delivered(collector, 2)
    finally:
        second.uninstrument()
        first.uninstrument()
        provider.shutdown()
    assert [log["stream"] for log in logs] == [False, True]
    spans = exporter.get_finished_spans()
    assert len(ours(exporter)) == 2
    theirs = [s for s in spans if s.instrumentation_scope.name != RESPAN_SCOPE]
    assert len(theirs) == 2, [s.name for s in spans]


def test_opentelemetry_instrument_with_openinference_installed(tmp_path, stub, collector) -> None:
    pytest.importorskip("openinference.instrumentation.openai")
    done = run_app(tmp_path, stub, collector.url + "/api")
    assert "LOADED: True" in done.stdout
    assert len(collector.logs) == 1
