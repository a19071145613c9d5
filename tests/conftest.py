"""Shared fixtures: a loopback OpenAI-compatible stub, a loopback Respan collector, and
`instrument()` pointed at them. Tests drive the real `openai` SDK; nothing of ours is mocked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ["RESPAN_INSTRUMENT_STRICT"] = "1"  # our own internal errors fail the suite
for _name in list(os.environ):
    if _name.startswith("RESPAN_") and _name != "RESPAN_INSTRUMENT_STRICT":
        del os.environ[_name]

import respan_instrument  # noqa: E402
from respan_instrument.local import Collector, OpenAIStub  # noqa: E402

RESPAN_KEY = "rk-test-respan-key-123"
OPENAI_KEY = "sk-test-openai-key-456"
# background timers short enough for a test to watch retries and spooling happen
FAST_RETRY = {"RESPAN_RETRY_BASE": "0.05", "RESPAN_RETRY_CAP": "0.3", "RESPAN_SCHEDULE_DELAY": "0.2"}


@pytest.fixture(autouse=True)
def _own_spool(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets a spool directory of its own: no test drains another's logs."""
    monkeypatch.setenv("RESPAN_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))


@pytest.fixture(scope="session")
def stub() -> Iterator[OpenAIStub]:
    server = OpenAIStub()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _collector_server() -> Iterator[Collector]:
    server = Collector(api_key=RESPAN_KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def collector(_collector_server: Collector) -> Iterator[Collector]:
    _collector_server.clear()
    yield _collector_server
    _collector_server.set_outage(False)
    _collector_server.clear()


@pytest.fixture()
def instrumented(collector: Collector, stub: OpenAIStub) -> Iterator[Collector]:
    stub.clear()
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")
    yield collector
    respan_instrument.uninstrument()


def delivered(collector: Collector, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Flush and return what the collector accepted, insisting on exactly `n` logs."""
    assert respan_instrument.flush(timeout), "flush() did not report full delivery"
    assert collector.wait_for(n, timeout=timeout)
    logs = list(collector.logs)
    assert len(logs) == n, [entry.get("span_name") for entry in logs]
    return logs


@pytest.fixture()
def client(stub: OpenAIStub) -> Iterator[Any]:
    import openai

    c = openai.OpenAI(api_key=OPENAI_KEY, base_url=stub.url + "/v1", max_retries=0)
    yield c
    c.close()


@pytest.fixture()
def aclient(stub: OpenAIStub) -> Any:
    """A factory: use `async with aclient() as c:` inside the test's own event loop."""
    import openai

    return lambda: openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=stub.url + "/v1", max_retries=0)


@pytest.fixture()
def sdk_spans() -> Iterator[tuple[Any, Any]]:
    """An application's own OpenTelemetry SDK provider, exporting to memory: (provider, exporter)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture()
def traced(collector: Collector, sdk_spans: tuple[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """Instrumented with the application's own provider: (provider, in-memory exporter)."""
    provider, exporter = sdk_spans
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", tracer_provider=provider
    )
    yield provider, exporter
    respan_instrument.uninstrument()


@pytest.fixture(autouse=True)
def _our_errors_fail_the_test() -> Iterator[None]:
    """An error of ours contained where it cannot raise to the test (a background thread, a
    finalizer) fails the test during which it happened, here."""
    from respan_instrument import _errors

    del _errors.failures[:]
    yield
    failures = list(_errors.failures)
    del _errors.failures[:]
    assert not failures, f"errors of ours were contained: {failures}"


class Forward(httpx.BaseTransport):
    """Lets a client believe it talks to api.openai.com (where we ask for usage) while the stub
    answers."""

    def __init__(self, target: str) -> None:
        self._target = httpx.URL(target)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self._target.host, port=self._target.port)
        return self._inner.handle_request(request)


@pytest.fixture()
def openai_host_client(stub) -> Any:
    import openai

    c = openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx.Client(transport=Forward(stub.url)),
    )
    yield c
    c.close()


@pytest.fixture()
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A spool directory of the test's own, with fast retries and writer passes."""
    path = str(tmp_path / "spool")
    monkeypatch.setenv("RESPAN_SPOOL_DIR", path)
    for name, value in FAST_RETRY.items():
        monkeypatch.setenv(name, value)
    return path


def respan_logs(collector: Collector, privacy: Any = None) -> Any:
    """The Respan destination instrument() builds, to `collector` with its encoder (content
    kept, no redactor, unless `privacy` says otherwise), for tests that build a pipeline."""
    from respan_instrument._config import READ_TIMEOUT
    from respan_instrument.deliver.respan import RespanLogs
    from respan_instrument.record.encoders import RequestLogEncoder
    from respan_instrument.record.prices import PriceBook
    from respan_instrument.record.privacy import Privacy
    from respan_instrument.record.seen import Seen

    encoder = RequestLogEncoder(
        privacy=privacy if privacy is not None else Privacy(True),
        prices=PriceBook(),
        defaults={},
        seen=Seen(),
        max_content_bytes=1_000_000,
    )
    return RespanLogs(collector.url + "/api", RESPAN_KEY, encoder=encoder, read_timeout=READ_TIMEOUT)
