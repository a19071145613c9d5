"""OpenAI Agents SDK runs as Respan traces (SPEC §15).

The real, unmodified `openai-agents` runs against the loopback OpenAI stub; the assertions are on
what the Respan-compatible collector received: one trace tree per run (workflow -> agent ->
tool / handoff / guardrail / model call), each model call logged once with its cost, the
attributes on every log. The Agents SDK's own trace exporter is pointed at a loopback sink, to
show what `agents="exclusive"` changes. Without `openai-agents` installed, everything here skips.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import OPENAI_KEY, RESPAN_KEY

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub

agents = pytest.importorskip("agents")
tracing = pytest.importorskip("agents.tracing")

QUESTION = "What is the capital of France?"
MODEL_LOGS = ("response", "chat", "transcription", "speech")


class Sink:
    """Where the Agents SDK's own exporter posts its traces (in place of api.openai.com)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                sink.items.extend(json.loads(body).get("data") or [])
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def traces(self) -> list[str]:
        """Trace ids of the traces the SDK's exporter delivered so far (after `flush_traces`)."""
        sdk_flush()
        return [item["id"] for item in self.items if item.get("object") == "trace"]


def sdk_flush() -> None:
    """What the SDK's own batch processor holds, exported now (its `flush_traces` is newer)."""
    tracing.processors.default_processor().force_flush()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    """The SDK's tracing on, its exporter aimed at a loopback sink; off again afterwards (as
    tests/test_libraries.py leaves it), so no test ever reaches OpenAI's trace backend."""
    server = Sink()
    exporter = tracing.processors.default_exporter()
    previous = exporter.endpoint
    exporter.endpoint = server.url
    exporter.set_api_key(OPENAI_KEY)
    agents.set_tracing_disabled(False)
    yield server
    sdk_flush()
    agents.set_tracing_disabled(True)
    exporter.endpoint = previous
    server.server.shutdown()


@pytest.fixture()
def traced(sink: Sink, collector: Collector, stub: OpenAIStub) -> Iterator[Collector]:
    stub.clear()
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")
    yield collector
    respan_instrument.uninstrument()


def model(stub: OpenAIStub, api: str = "responses") -> Any:
    import openai

    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0)
    kind = agents.OpenAIResponsesModel if api == "responses" else agents.OpenAIChatCompletionsModel
    return kind(model="gpt-4o-mini", openai_client=client)


def logs_of(collector: Collector, n: int) -> list[dict[str, Any]]:
    assert respan_instrument.flush(10)
    assert collector.wait_for(n, timeout=10)
    logs = sorted(collector.logs, key=lambda log: log["start_time"])
    assert len(logs) == n, [(log["log_type"], log["span_name"]) for log in logs]
    return logs


def tree(logs: list[dict[str, Any]]) -> list[str]:
    """Each log as `depth * "  " + log_type name`, in start order under its parent: the tree."""
    by_parent: dict[Any, list[dict[str, Any]]] = {}
    for log in logs:
        by_parent.setdefault(log.get("span_parent_id"), []).append(log)
    out: list[str] = []

    def walk(parent: Any, depth: int) -> None:
        for log in by_parent.get(parent, []):
            name = log["span_name"] if log["log_type"] not in MODEL_LOGS else log["model"].split("-20")[0]
            out.append("  " * depth + f"{log['log_type']} {name}")
            walk(log["span_unique_id"], depth + 1)

    walk(None, 0)
    return out


def assert_one_trace(logs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every log in one trace, every parent a log that exists, one root: the workflow."""
    (trace_id,) = {log["trace_unique_id"] for log in logs}
    assert len(trace_id) == 32 and int(trace_id, 16)
    ids = {log["span_unique_id"] for log in logs}
    assert len(ids) == len(logs)
    for log in logs:
        assert log.get("span_parent_id") is None or log["span_parent_id"] in ids, log
        assert isinstance(log["model"], str) and log["model"]
        if log["log_type"] not in MODEL_LOGS:  # no model call: no model, tokens or cost
            assert log["model"] == "none"
            assert not {"cost", "prompt_tokens", "completion_tokens", "usage"} & set(log)
    (root,) = [log for log in logs if "span_parent_id" not in log]
    assert root["log_type"] == "workflow"
    return root


def triage(stub: OpenAIStub, api: str = "responses", **kwargs: Any) -> Any:
    @agents.input_guardrail
    async def polite(ctx: Any, agent: Any, text: Any) -> Any:
        return agents.GuardrailFunctionOutput(output_info={"ok": True}, tripwire_triggered=False)

    french = agents.Agent(name="French", instructions="Answer in French.", model=model(stub, api))
    return agents.Agent(
        name="Triage",
        instructions="Route.",
        model=model(stub, api),
        handoffs=[french],
        input_guardrails=[polite],
        **kwargs,
    )


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_run_is_one_tree_with_each_model_call_once(traced: Collector, stub: OpenAIStub, api: str) -> None:
    result = asyncio.run(agents.Runner.run(triage(stub, api), QUESTION))
    requests = [r for r in stub.requests if r.method == "POST"]
    assert len(requests) == 2  # the handoff, then the answer
    logs = logs_of(traced, 7)
    root = assert_one_trace(logs)
    kind = "response" if api == "responses" else "chat"
    assert tree(logs) == [
        "workflow Agent workflow",
        "  agent Triage",
        "    guardrail polite",
        f"    {kind} gpt-4o-mini",
        "    handoff handoff Triage -> French",
        "  agent French",
        f"    {kind} gpt-4o-mini",
    ]
    calls = [log for log in logs if log["log_type"] == kind]
    assert all(log["cost"] > 0 and log["status"] == "success" for log in calls)
    # the run's tokens (the SDK's own sum) are those of its model calls, counted once
    usage = result.context_wrapper.usage
    assert sum(log["prompt_tokens"] for log in calls) == usage.input_tokens
    assert sum(log["completion_tokens"] for log in calls) == usage.output_tokens
    by_name = {log["span_name"]: log for log in logs}
    assert by_name["Triage"]["span_handoffs"] == ["French"]
    assert by_name["polite"]["metadata"] == {"triggered": False}
    handoff = by_name["handoff Triage -> French"]
    assert handoff["metadata"] == {"from_agent": "Triage", "to_agent": "French"}
    assert root["span_name"] == "Agent workflow" and root["latency"] > 0
    assert all(log["span_workflow_name"] == "Agent workflow" for log in logs)
    for log in logs:
        assert log["start_time"] <= log["timestamp"]


def test_workflow_trace_id_is_the_sdks(traced: Collector, stub: OpenAIStub, sink: Sink) -> None:
    agent = agents.Agent(name="Solo", instructions="Be brief.", model=model(stub))
    with agents.trace("Geography", group_id="chat-42", metadata={"plan": "pro"}) as run:
        asyncio.run(agents.Runner.run(agent, QUESTION))
    logs = logs_of(traced, 3)
    root = assert_one_trace(logs)
    assert root["trace_unique_id"] == run.trace_id.removeprefix("trace_")
    assert root["span_name"] == "Geography"
    assert root["metadata"] == {"plan": "pro"}
    # group_id is the thread of every log of the run
    assert {log["thread_identifier"] for log in logs} == {"chat-42"}
    assert run.trace_id in sink.traces()  # the SDK's own exporter still runs (the default)


def test_tool_calls_and_a_tool_that_raises(traced: Collector, stub: OpenAIStub) -> None:
    def capital_of(country: str) -> str:
        """The capital city of a country."""
        return "Paris"

    def broken(country: str) -> str:
        """Always fails."""
        raise RuntimeError("the atlas is missing")

    looker = agents.Agent(
        name="Looker", instructions="Use tools.", model=model(stub), tools=[agents.function_tool(capital_of)]
    )
    asyncio.run(agents.Runner.run(looker, QUESTION))
    logs = logs_of(traced, 5)
    assert_one_trace(logs)
    assert tree(logs) == [
        "workflow Agent workflow",
        "  agent Looker",
        "    response gpt-4o-mini",
        "    tool capital_of",
        "    response gpt-4o-mini",
    ]
    tool = next(log for log in logs if log["log_type"] == "tool")
    assert json.loads(tool["input"]) == {"country": "x"}  # the stub's sample arguments
    assert tool["output"] == "Paris" and tool["status"] == "success"
    assert tool["span_tools"] == ["capital_of"]

    traced.clear()
    failing = agents.Agent(
        name="Failing", instructions="Use tools.", model=model(stub), tools=[agents.function_tool(broken)]
    )
    result = asyncio.run(agents.Runner.run(failing, QUESTION))  # the SDK hands the error to the model
    assert result.final_output
    logs = logs_of(traced, 5)
    assert_one_trace(logs)
    tool = next(log for log in logs if log["log_type"] == "tool")
    assert tool["status"] == "error" and tool["error_message"]
    assert "status_code" not in tool


def test_output_guardrail_tripwire(traced: Collector, stub: OpenAIStub) -> None:
    @agents.output_guardrail
    async def no_echo(ctx: Any, agent: Any, output: Any) -> Any:
        return agents.GuardrailFunctionOutput(output_info={}, tripwire_triggered="Echo" in str(output))

    agent = agents.Agent(name="Guarded", instructions="x", model=model(stub), output_guardrails=[no_echo])
    with pytest.raises(agents.OutputGuardrailTripwireTriggered):
        asyncio.run(agents.Runner.run(agent, QUESTION))
    logs = logs_of(traced, 4)
    assert_one_trace(logs)
    guardrail = next(log for log in logs if log["log_type"] == "guardrail")
    assert guardrail["span_name"] == "no_echo" and guardrail["metadata"]["triggered"] is True
    agent_log = next(log for log in logs if log["log_type"] == "agent")
    assert guardrail["span_parent_id"] == agent_log["span_unique_id"]
