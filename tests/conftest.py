"""What the tests share: a loopback OpenAI-compatible stub (replaying recorded answers on demand),
a loopback Respan collector (failing on demand), `instrument()` pointed at them, and the helpers
every file used to copy (`start`, `chat`, `delivered`, `spool_rows`, an app in a child process,
`sdk_has`). Tests drive the real `openai` SDK; nothing of ours is mocked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ["RESPAN_INSTRUMENT_STRICT"] = "1"  # our own internal errors fail the suite
for _name in list(os.environ):
    if _name.startswith("RESPAN_") and _name != "RESPAN_INSTRUMENT_STRICT":
        del os.environ[_name]

from faulty_collector import FaultyCollector  # noqa: E402
from replay_stub import ReplayStub  # noqa: E402

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
def stub() -> Iterator[ReplayStub]:
    """The loopback OpenAI stub (one per test process), which can `replay` a recorded answer."""
    server = ReplayStub()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _collector_server() -> Iterator[FaultyCollector]:
    server = FaultyCollector(api_key=RESPAN_KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def collector(_collector_server: FaultyCollector) -> Iterator[FaultyCollector]:
    """The loopback Respan collector (one per test process, cleared for each test), which fails on
    demand: `fail_next`, `set_outage`, `set_delay`, `drop_connection_next`."""
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
    assert len(logs) == n, [(entry.get("log_type"), entry.get("span_name")) for entry in logs]
    return logs


# ---- helpers the tests share: start, a tagged call, what the spool holds ------------------------
def sdk_has(*path: str) -> bool:
    """Whether this openai SDK's client has the surface at `path` (an older major lacks some)."""
    import openai

    found: Any = openai.OpenAI(api_key=OPENAI_KEY, base_url="http://127.0.0.1:9/v1")
    try:
        for name in path:
            found = getattr(found, name)
    except (AttributeError, ImportError):  # (a surface whose module needs an absent extra)
        return False
    return True


def start(collector: Collector, key: str = RESPAN_KEY, **settings: Any) -> None:
    """`instrument()` delivering to the loopback collector with `key`, plus any other settings."""
    respan_instrument.instrument(api_key=key, base_url=collector.url + "/api", **settings)


@pytest.fixture()
def done() -> Iterator[None]:
    """For a test that calls `start()` itself: `uninstrument()` when it ends, whatever happened."""
    yield
    respan_instrument.uninstrument()


def chat(client: Any, tag: str) -> None:
    """One chat call, told apart at the collector by its `custom_identifier` (`tag`)."""
    with respan_instrument.attributes(custom_identifier=tag):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": tag}])


def assert_none_of(raw: tuple[str, ...], data: bytes | str) -> None:
    """None of the `raw` strings (personal data as the app sent it) appears in `data`."""
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    for each in raw:
        assert each not in text, each


def spool_rows(spool_dir: str) -> int:
    """How many logs wait in the spool directory (what `respan-instrument spool status` counts)."""
    from respan_instrument.deliver import spool

    return int(spool.status(spool_dir)["rows"])


def spool_bytes(spool_dir: str) -> bytes:
    """Every byte of every file of the spool directory (the database, its WAL and index)."""
    return b"".join(f.read_bytes() for f in sorted(Path(spool_dir).rglob("*")) if f.is_file())


@pytest.fixture()
def client(stub: OpenAIStub) -> Iterator[Any]:
    import openai

    c = openai.OpenAI(api_key=OPENAI_KEY, base_url=stub.url + "/v1", max_retries=0)
    yield c
    c.close()


@pytest.fixture(scope="module")
def plain_stub() -> Iterator[OpenAIStub]:
    """The package's own OpenAIStub as the demo and the examples run it (no replays), per module."""
    with OpenAIStub() as server:
        yield server


@pytest.fixture()
def plain_client(plain_stub: OpenAIStub) -> Iterator[Any]:
    """An openai client of `plain_stub`, whose recorded requests start empty; no instrumentation."""
    import openai

    plain_stub.clear()
    c = openai.OpenAI(api_key="sk-test", base_url=plain_stub.base_url, max_retries=0)
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


# ---- an application in a process of its own (exit, restart, kill) ------------------------------
CHILD_APP = """
import os, sys, time
import openai
import respan_instrument
respan_instrument.instrument()
client = openai.OpenAI(api_key="sk-x", base_url=os.environ["STUB_URL"], max_retries=0)
def call(tag):
    with respan_instrument.attributes(custom_identifier=tag):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": tag}])
"""


def child_env(collector: Collector, stub: OpenAIStub, spool_dir: str, **extra: str) -> dict[str, str]:
    """The environment `CHILD_APP` runs in: the loopback servers, `spool_dir`, fast retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env.update(FAST_RETRY)
    env.update(
        RESPAN_API_KEY=RESPAN_KEY,
        RESPAN_BASE_URL=collector.url + "/api",
        RESPAN_SPOOL_DIR=spool_dir,
        STUB_URL=stub.url + "/v1",
        RESPAN_INSTRUMENT_STRICT="1",
    )
    env.update(extra)
    return env


def run_child(code: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`CHILD_APP` followed by `code` (which calls `call(tag)`), run to its end in `env`."""
    return subprocess.run(
        [sys.executable, "-c", CHILD_APP + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )


def respan_logs(collector: Collector, privacy: Any = None) -> Any:
    """The Respan destination instrument() builds, to `collector` with its encoder (content
    kept, no redactor, unless `privacy` says otherwise), for tests that build a pipeline."""
    from respan_instrument._config import READ_TIMEOUT
    from respan_instrument.deliver.respan import RespanLogs
    from respan_instrument.record.encoders import RequestLogEncoder
    from respan_instrument.record.prices import PriceBook
    from respan_instrument.record.privacy import Privacy
    from respan_instrument.record.worker_memory import WorkerMemory

    encoder = RequestLogEncoder(
        privacy=privacy if privacy is not None else Privacy(True),
        prices=PriceBook(),
        defaults={},
        seen=WorkerMemory(),
        max_content_bytes=1_000_000,
    )
    return RespanLogs(collector.url + "/api", RESPAN_KEY, encoder=encoder, read_timeout=READ_TIMEOUT)
