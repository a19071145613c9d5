"""Where the features of SPEC §13-§16 meet: privacy over every new kind of log, cost on the new
surfaces, Agents runs over the new transports, and the patch lifecycle with all of them. The
real SDKs against loopback servers; assertions on what the collector, the OTLP receiver and the
spool received."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OPENAI_KEY, RESPAN_KEY

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
RAW = (EMAIL, CARD)


def start(collector: Collector, **kwargs: Any) -> None:
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api", **kwargs)


@pytest.fixture()
def done() -> Iterator[None]:
    yield
    respan_instrument.uninstrument()


def received(collector: Collector, n: int) -> list[dict[str, Any]]:
    assert respan_instrument.flush(10)
    assert collector.wait_for(n, timeout=10)
    logs = list(collector.logs)
    assert len(logs) == n, [(log["log_type"], log.get("span_name")) for log in logs]
    return logs


def spool_bytes(path: str) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(Path(path).rglob("*")) if f.is_file())


def assert_clean(data: bytes | str) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    for raw in RAW:
        assert raw not in text, raw


# ---- privacy over an Agents SDK run -----------------------------------------------------------


def _agents_run(stub: OpenAIStub) -> None:
    """A run whose tool fails with the user's PII in its error (a failure function of the app's
    own: the SDK then reports the error's text in the span's `error.data`), inside a custom span
    whose data holds PII too."""
    agents = pytest.importorskip("agents")
    import openai

    def lookup(country: str) -> str:
        """Looks a customer up."""
        raise RuntimeError(f"no customer {EMAIL} with card {CARD}")

    tool = agents.function_tool(lookup, failure_error_function=lambda ctx, exc: f"failed: {exc}")
    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0)
    agent = agents.Agent(
        name="Desk",
        instructions="Use tools.",
        model=agents.OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client),
        tools=[tool],
    )

    async def main() -> None:
        with agents.custom_span("lookup step", {"customer": EMAIL}):
            await agents.Runner.run(agent, "Who is it?")

    with agents.trace("Support"):
        asyncio.run(main())


@pytest.fixture()
def agents_tracing() -> Iterator[None]:
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(False)
    agents.set_trace_processors([])  # no SDK exporter: nothing may reach OpenAI's backend
    yield
    agents.set_tracing_disabled(True)


def test_agents_run_redacted_in_logs_and_spool(done, agents_tracing, collector, stub, spool_dir) -> None:
    stub.clear()
    start(collector, redact="pii")
    _agents_run(stub)
    logs = received(collector, 6)
    assert_clean(json.dumps(logs))
    assert_clean(spool_bytes(spool_dir))
    tool = next(log for log in logs if log["log_type"] == "tool")
    assert tool["status"] == "error"
    assert "[EMAIL]" in json.dumps(tool["metadata"]["error_data"])  # redacted, not dropped
    task = next(log for log in logs if log["log_type"] == "task")
    assert task["metadata"]["customer"] == "[EMAIL]"


def test_agents_run_redacted_in_otlp(done, agents_tracing, collector, stub) -> None:
    stub.clear()
    start(collector, redact="pii", export="otlp")
    _agents_run(stub)
    assert respan_instrument.flush(10)
    assert collector.wait_for_spans(6, timeout=10)
    for request in collector.requests:
        assert_clean(request.body)


@pytest.mark.parametrize("how", ["sample_rate", "capture_content", "attributes"])
def test_agents_run_without_content_is_content_free_whole(done, agents_tracing, collector, stub, how) -> None:
    stub.clear()
    if how == "sample_rate":
        start(collector, sample_rate=0.0)
    elif how == "capture_content":
        start(collector, capture_content=False)
    else:
        start(collector)
    with respan_instrument.attributes(capture_content=False if how == "attributes" else None):
        _agents_run(stub)
    logs = received(collector, 6)
    text = json.dumps(logs)
    assert_clean(text)
    assert "Who is it?" not in text
    for log in logs:
        assert not {"input", "output", "prompt_messages", "completion_message"} & set(log), log


def test_a_failing_redactor_drops_agents_content(done, agents_tracing, collector, stub) -> None:
    def broken(text: str) -> str:
        raise ValueError("no")

    stub.clear()
    start(collector, redact=broken)
    _agents_run(stub)
    logs = received(collector, 6)
    assert_clean(json.dumps(logs))
