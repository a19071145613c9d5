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
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import OPENAI_KEY, RESPAN_KEY, start

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub
from respan_instrument.record.manual import validate_manual

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
    start(collector)
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
            assert validate_manual(log) == log  # fields and types as Respan's logging API has them
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


def settled(collector: Collector, stub: OpenAIStub) -> list[dict[str, Any]]:
    """The logs of a run whose length the test cannot know (a stream cut short): flushed until its
    workflow log came, each model request the stub answered logged once."""
    for _ in range(50):
        assert respan_instrument.flush(10)
        if any(log["log_type"] == "workflow" for log in collector.logs):
            break
        threading.Event().wait(0.1)
    logs = sorted(collector.logs, key=lambda log: log["start_time"])
    assert_one_trace(logs)
    requests = [r for r in stub.requests if r.method == "POST"]
    assert len([log for log in logs if log["log_type"] in MODEL_LOGS]) == len(requests)
    return logs


def test_run_sync(traced: Collector, stub: OpenAIStub) -> None:
    loop = asyncio.new_event_loop()  # older SDKs run run_sync on the thread's current loop
    asyncio.set_event_loop(loop)
    try:
        result = agents.Runner.run_sync(triage(stub), QUESTION)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert result.final_output == f"Echo: {QUESTION}"
    logs = logs_of(traced, 7)
    assert_one_trace(logs)
    assert [line.split()[0] for line in tree(logs)] == [
        "workflow",
        "agent",
        "guardrail",
        "response",
        "handoff",
        "agent",
        "response",
    ]


def test_run_streamed_consumed(traced: Collector, stub: OpenAIStub) -> None:
    async def main() -> str:
        streamed = agents.Runner.run_streamed(triage(stub), QUESTION)
        deltas = [
            event.data.delta
            async for event in streamed.stream_events()
            if event.type == "raw_response_event"
            and getattr(event.data, "type", "") == "response.output_text.delta"
        ]
        assert "".join(deltas) == streamed.final_output
        return str(streamed.final_output)

    assert asyncio.run(main()) == f"Echo: {QUESTION}"
    logs = logs_of(traced, 7)
    assert_one_trace(logs)
    calls = [log for log in logs if log["log_type"] == "response"]
    assert all(log["stream"] is True and log["cost"] > 0 for log in calls)
    agent_ids = {log["span_unique_id"] for log in logs if log["log_type"] == "agent"}
    assert {log["span_parent_id"] for log in calls} == agent_ids


@pytest.mark.parametrize("how", ["abandoned", "cancelled"])
def test_run_streamed_cut_short(traced: Collector, stub: OpenAIStub, how: str) -> None:
    async def main() -> None:
        streamed = agents.Runner.run_streamed(triage(stub), QUESTION)
        async for event in streamed.stream_events():
            if event.type == "raw_response_event":
                break
        if how == "cancelled":
            streamed.cancel()
        # abandoned: the run's task is cancelled when asyncio.run() ends

    asyncio.run(main())
    logs = settled(traced, stub)
    assert any(log["log_type"] == "agent" and log["span_name"] == "Triage" for log in logs)


def test_attributes_on_every_log(traced: Collector, stub: OpenAIStub) -> None:
    config = agents.RunConfig(workflow_name="Support", group_id="conversation-7")
    with respan_instrument.attributes(customer_identifier="user_123", metadata={"plan": "pro"}):
        asyncio.run(agents.Runner.run(triage(stub), QUESTION, run_config=config))
    logs = logs_of(traced, 7)
    root = assert_one_trace(logs)
    assert root["span_name"] == "Support"
    for log in logs:
        assert log["customer_identifier"] == "user_123"
        assert log["metadata"]["plan"] == "pro"
        assert log["thread_identifier"] == "conversation-7"  # group_id: no thread was set
        assert log["span_workflow_name"] == "Support"

    traced.clear()
    with respan_instrument.attributes(thread_identifier="t-9"):
        asyncio.run(agents.Runner.run(triage(stub), QUESTION, run_config=config))
    assert {log["thread_identifier"] for log in logs_of(traced, 7)} == {"t-9"}  # attributes() wins


def test_exclusive_replaces_the_sdks_exporter(
    sink: Sink, collector: Collector, stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> str:
        agent = agents.Agent(name="Solo", instructions="Be brief.", model=model(stub))  # (a client per loop)
        with agents.trace("Check") as current:
            asyncio.run(agents.Runner.run(agent, QUESTION))
        return str(current.trace_id)

    start(collector)
    try:
        both = run()
        assert both in sink.traces()  # the default: OpenAI's exporter and ours
        assert len(logs_of(collector, 3)) == 3
        collector.clear()
        start(collector, agents="exclusive")
        only_ours = run()
        assert only_ours not in sink.traces()
        assert {log["trace_unique_id"] for log in logs_of(collector, 3)} == {only_ours[6:]}
    finally:
        respan_instrument.uninstrument()
    collector.clear()
    after = run()  # uninstrumented: the SDK's own processors are back, ours is gone
    assert after in sink.traces()
    assert respan_instrument.flush(5) and not collector.logs
    names = [type(p).__name__ for p in tracing.get_trace_provider()._multi_processor._processors]
    assert names == ["BatchTraceProcessor"]

    monkeypatch.setenv("RESPAN_AGENTS_EXCLUSIVE", "true")
    start(collector)
    try:
        assert run() not in sink.traces()
    finally:
        respan_instrument.uninstrument()
    assert respan_instrument.flush(5)


@pytest.mark.parametrize(("argument", "env"), [("sometimes", None), (None, "maybe")])
def test_bad_exclusive_setting_is_a_value_error(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, argument: str | None, env: str | None
) -> None:
    if env is not None:
        monkeypatch.setenv("RESPAN_AGENTS_EXCLUSIVE", env)
    with pytest.raises(ValueError, match="RESPAN_AGENTS_EXCLUSIVE" if env else "agents="):
        start(collector, agents=argument)


def test_tracing_disabled_leaves_model_calls_as_they_were(traced: Collector, stub: OpenAIStub) -> None:
    agents.set_tracing_disabled(True)
    try:
        asyncio.run(agents.Runner.run(triage(stub), QUESTION))
    finally:
        agents.set_tracing_disabled(False)
    logs = logs_of(traced, 2)
    assert [log["log_type"] for log in logs] == ["response", "response"]
    assert all("span_workflow_name" not in log for log in logs)


def test_our_failure_never_reaches_the_run(
    traced: Collector, stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A custom span whose data our processor cannot read: the run goes on, the rest is logged."""
    monkeypatch.setenv("RESPAN_INSTRUMENT_STRICT", "0")
    # (exclusive: the SDK's own exporter, older ones at least, would choke on this span's data)
    start(traced, agents="exclusive")

    class Unreadable(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

        def __len__(self) -> int:
            return 1

        def __iter__(self) -> Any:
            raise RuntimeError("no")

    agent = agents.Agent(name="Solo", instructions="Be brief.", model=model(stub))

    async def main() -> Any:
        with agents.custom_span("odd", Unreadable()):
            pass
        with agents.custom_span("fine", {"step": 1}):
            return await agents.Runner.run(agent, QUESTION)

    with agents.trace("Resilient"):
        result = asyncio.run(main())
    assert result.final_output == f"Echo: {QUESTION}"
    logs = logs_of(traced, 4)
    assert_one_trace(logs)
    assert tree(logs) == [
        "workflow Resilient",
        "  task fine",
        "    agent Solo",
        "      response gpt-4o-mini",
    ]
    assert next(log for log in logs if log["span_name"] == "fine")["metadata"] == {"step": 1}
    assert any(
        "ending an Agents span" in r.getMessage() for r in caplog.records if r.name == "respan_instrument"
    )


def test_otlp_export_is_one_span_tree(sink: Sink, collector: Collector, stub: OpenAIStub) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.common")
    start(collector, export="otlp")
    try:
        asyncio.run(agents.Runner.run(triage(stub), QUESTION, run_config=agents.RunConfig(group_id="g-1")))
        assert respan_instrument.flush(10)
        assert collector.wait_for_spans(7, timeout=10)
    finally:
        respan_instrument.uninstrument()
    spans = collector.spans
    assert len(spans) == 7 and not collector.logs
    (trace_id,) = {span["trace_id"] for span in spans}
    ids = {span["span_id"]: span for span in spans}
    (root,) = [span for span in spans if not span["parent_span_id"]]
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert all(span["parent_span_id"] in ids for span in spans if span is not root)
    calls = [span for span in spans if span["attributes"]["respan.entity.log_type"] == "response"]
    assert len(calls) == 2 and all(span["attributes"]["gen_ai.usage.cost"] > 0 for span in calls)
    for call in calls:
        parent = ids[call["parent_span_id"]]
        assert parent["attributes"]["gen_ai.operation.name"] == "invoke_agent"
        assert call["kind"] == 3  # CLIENT
    agent = next(span for span in spans if span["attributes"].get("gen_ai.agent.name") == "Triage")
    assert agent["kind"] == 1  # INTERNAL: no client call of its own
    assert agent["attributes"]["respan.span.handoffs"] == '["French"]'
    assert {span["attributes"]["respan.threads.thread_identifier"] for span in spans} == {"g-1"}


def test_mcp_tool_listing_and_call(traced: Collector, stub: OpenAIStub) -> None:
    pytest.importorskip("mcp")
    from agents.mcp import MCPServer
    from mcp.types import CallToolResult, TextContent, Tool

    class Weather(MCPServer):  # an MCP server in-process: the SDK lists and calls its tools
        @property
        def name(self) -> str:
            return "weather"

        async def connect(self) -> None:
            return None

        async def cleanup(self) -> None:
            return None

        async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[Tool]:
            schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            return [Tool(name="forecast", description="The forecast.", inputSchema=schema)]

        async def call_tool(self, tool_name: str, arguments: Any, *args: Any, **kwargs: Any) -> Any:
            return CallToolResult(content=[TextContent(type="text", text="sunny")])

        async def list_prompts(self) -> Any:
            raise NotImplementedError

        async def get_prompt(self, name: str, arguments: Any = None) -> Any:
            raise NotImplementedError

    agent = agents.Agent(name="Forecaster", instructions="x", model=model(stub), mcp_servers=[Weather()])
    asyncio.run(agents.Runner.run(agent, QUESTION))
    logs = settled(traced, stub)
    listings = [log for log in logs if log["span_name"] == "list_tools weather"]
    assert listings and all(log["log_type"] == "tool" for log in listings)
    assert listings[0]["span_tools"] == ["forecast"] and listings[0]["metadata"]["mcp_server"] == "weather"
    (call,) = [log for log in logs if log["span_name"] == "forecast"]
    assert call["log_type"] == "tool" and "sunny" in call["output"]


def test_voice_pipeline(traced: Collector, stub: OpenAIStub) -> None:
    numpy = pytest.importorskip("numpy")
    voice = pytest.importorskip("agents.voice")
    import openai

    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0)
    agent = agents.Agent(name="Speaker", instructions="x", model=model(stub))
    pipeline = voice.VoicePipeline(
        workflow=voice.SingleAgentVoiceWorkflow(agent),
        stt_model=voice.OpenAISTTModel("gpt-4o-transcribe", client),
        tts_model=voice.OpenAITTSModel("gpt-4o-mini-tts", client),
    )

    async def main() -> int:
        result = await pipeline.run(voice.AudioInput(buffer=numpy.zeros(2400, dtype=numpy.int16)))
        return len([event async for event in result.stream()])

    assert asyncio.run(main()) > 0
    logs = logs_of(traced, 6)
    assert_one_trace(logs)
    assert tree(logs) == [
        "workflow Voice Agent",
        "  transcription gpt-4o-transcribe",
        "  agent Speaker",
        "    response gpt-4o-mini",
        "  task speech group",
        "    speech gpt-4o-mini-tts",
    ]


def test_agents_imported_after_instrument(collector: Collector, stub: OpenAIStub, tmp_path: Any) -> None:
    """`instrument()` first, `import agents` later (the post-import hook), in a fresh process."""
    import os
    import subprocess
    import sys

    script = f"""
import asyncio, sys
import respan_instrument
respan_instrument.instrument(api_key={RESPAN_KEY!r}, base_url={collector.url + "/api"!r}, agents="exclusive")
assert "agents" not in sys.modules
import agents, openai
client = openai.AsyncOpenAI(api_key="sk-test", base_url={stub.base_url!r}, max_retries=0)
model = agents.OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client)
agent = agents.Agent(name="Late", instructions="x", model=model)
asyncio.run(agents.Runner.run(agent, "hi"))
assert respan_instrument.flush(10)
"""
    env = {**os.environ, "RESPAN_SPOOL_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, errors="replace", timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr
    logs = logs_of(collector, 3)
    assert_one_trace(logs)
    assert [line.strip() for line in tree(logs)] == [
        "workflow Agent workflow",
        "agent Late",
        "response gpt-4o-mini",
    ]


def test_concurrent_runs_in_threads_each_one_tree(traced: Collector, stub: OpenAIStub) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(i: int) -> None:
        config = agents.RunConfig(workflow_name=f"run-{i}")
        with respan_instrument.attributes(customer_identifier=f"user-{i}"):
            asyncio.run(agents.Runner.run(triage(stub), QUESTION, run_config=config))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(8)))
    logs = logs_of(traced, 8 * 7)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        by_trace.setdefault(log["trace_unique_id"], []).append(log)
    assert len(by_trace) == 8
    for run_logs in by_trace.values():
        root = assert_one_trace(run_logs)
        i = root["span_name"].split("-")[1]
        assert {log["customer_identifier"] for log in run_logs} == {f"user-{i}"}
        assert [line.split()[0] for line in tree(run_logs)] == [
            "workflow",
            "agent",
            "guardrail",
            "response",
            "handoff",
            "agent",
            "response",
        ]


def test_auto_instrumentation_with_the_apps_tracer_provider(
    sink: Sink, collector: Collector, stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`opentelemetry-instrument`'s way in (the environment, the app's TracerProvider): the same
    tree, the model calls under their agents although their live spans belong to the app's trace."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("RESPAN_API_KEY", RESPAN_KEY)
    monkeypatch.setenv("RESPAN_BASE_URL", collector.url + "/api")
    monkeypatch.setenv("RESPAN_AGENTS_EXCLUSIVE", "true")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = respan_instrument.RespanOpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with agents.trace("Auto") as run:
            asyncio.run(agents.Runner.run(triage(stub), QUESTION))
        logs = logs_of(collector, 7)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert run.trace_id not in sink.traces()
    assert_one_trace(logs)
    assert [line.split()[0] for line in tree(logs)] == [
        "workflow",
        "agent",
        "guardrail",
        "response",
        "handoff",
        "agent",
        "response",
    ]
    assert len(exporter.get_finished_spans()) == 2  # the app's provider sees the two model calls


def test_content_off_keeps_tool_arguments_and_results_out(
    sink: Sink, collector: Collector, stub: OpenAIStub
) -> None:
    def secret_lookup(country: str) -> str:
        """Looks up a secret."""
        return "the secret is 42"

    start(collector, capture_content=False)
    try:
        agent = agents.Agent(
            name="Quiet", instructions="x", model=model(stub), tools=[agents.function_tool(secret_lookup)]
        )
        with agents.custom_span("step", {"note": "private"}):
            pass  # (outside a trace: no span, no log)
        asyncio.run(agents.Runner.run(agent, QUESTION))
        logs = logs_of(collector, 5)
    finally:
        respan_instrument.uninstrument()
    assert_one_trace(logs)
    tool = next(log for log in logs if log["log_type"] == "tool")
    assert "input" not in tool and "output" not in tool and tool["span_tools"] == ["secret_lookup"]
    assert "the secret is 42" not in json.dumps(logs)


def test_trace_begun_before_instrument(sink: Sink, collector: Collector, stub: OpenAIStub) -> None:
    """The spans of a trace we did not see start still make one tree, under its workflow log."""
    agent = agents.Agent(name="Late", instructions="x", model=model(stub))
    with agents.trace("Early", group_id="g-early"):
        start(collector)
        asyncio.run(agents.Runner.run(agent, QUESTION))
    try:
        logs = logs_of(collector, 3)
    finally:
        respan_instrument.uninstrument()
    root = assert_one_trace(logs)
    assert root["span_name"] == "Early"
    assert {log["thread_identifier"] for log in logs} == {"g-early"}
    assert [line.strip() for line in tree(logs)] == ["workflow Early", "agent Late", "response gpt-4o-mini"]


def test_resumed_run_joins_its_first_runs_trace(traced: Collector, stub: OpenAIStub) -> None:
    """A run stopped for a tool's approval and resumed from its state: one trace, one workflow."""
    import inspect

    if "needs_approval" not in inspect.signature(agents.function_tool).parameters:
        pytest.skip("this Agents SDK has no tool approvals")

    def refund(order: str) -> str:
        """Refunds an order."""
        return "refunded"

    agent = agents.Agent(
        name="Clerk",
        instructions="x",
        model=model(stub),
        tools=[agents.function_tool(refund, needs_approval=True)],
    )

    async def main() -> Any:
        first = await agents.Runner.run(agent, "Refund order 7, please.")
        state = first.to_state()
        for item in first.interruptions:
            state.approve(item)
        return await agents.Runner.run(agent, state)

    assert asyncio.run(main()).final_output
    logs = settled(traced, stub)
    assert [log["span_name"] for log in logs if log["log_type"] == "agent"] == ["Clerk", "Clerk"]
    assert len([log for log in logs if log["log_type"] == "workflow"]) == 1
    processor = respan_instrument.capture.agents_tracing._processor
    assert not processor._open and not processor._live  # nothing kept for a trace that never ends


def test_realtime_agent_responses(traced: Collector) -> None:
    """A realtime agent's session (its own websocket, no spans): each model response one log."""
    pytest.importorskip("websockets")
    realtime = pytest.importorskip("agents.realtime")
    from tests.realtime_server import REPLY, RealtimeServer

    agent = realtime.RealtimeAgent(name="Voice", instructions="Be brief.")
    runner = realtime.RealtimeRunner(agent, config={"model_settings": {"modalities": ["text"]}})

    async def main(url: str) -> None:
        session = await runner.run(
            model_config={"url": url + "/realtime?model=gpt-realtime", "api_key": "sk-test"}
        )
        async with session:
            for text in ("Hello there", "And again"):
                await session.send_message(text)
                async for event in session:
                    if event.type == "agent_end":
                        break

    with RealtimeServer() as server:
        asyncio.run(asyncio.wait_for(main(server.url), 30))
    logs = logs_of(traced, 2)
    for log in logs:
        assert log["log_type"] == "chat" and log["model"].startswith("gpt-realtime")
        assert log["status"] == "success" and log["completion_message"]["content"] == REPLY
        assert log["cost"] > 0 and log["prompt_tokens"] == 120 and log["metadata"]["realtime"] == "true"
    assert len({log["thread_identifier"] for log in logs}) == 1  # the realtime session
    first, second = logs
    assert first["prompt_messages"][-1] == {"role": "user", "content": "Hello there"}
    assert second["prompt_messages"][-1] == {"role": "user", "content": "And again"}
    assert {"role": "assistant", "content": REPLY} in second["prompt_messages"]


def test_agent_as_tool_nests_under_its_tool(traced: Collector, stub: OpenAIStub) -> None:
    translator = agents.Agent(name="Translator", instructions="Translate.", model=model(stub))
    tool = translator.as_tool(tool_name="translate", tool_description="Translates text.")
    orchestrator = agents.Agent(name="Orchestrator", instructions="x", model=model(stub), tools=[tool])
    asyncio.run(agents.Runner.run(orchestrator, QUESTION))
    logs = logs_of(traced, 7)
    assert_one_trace(logs)
    assert tree(logs) == [
        "workflow Agent workflow",
        "  agent Orchestrator",
        "    response gpt-4o-mini",
        "    tool translate",
        "      agent Translator",
        "        response gpt-4o-mini",
        "    response gpt-4o-mini",
    ]


def test_run_during_an_outage_is_spooled_then_delivered_whole(
    sink: Sink, spool_dir: str, collector: Collector, stub: OpenAIStub
) -> None:
    start(collector)
    try:
        collector.set_outage(True)
        asyncio.run(agents.Runner.run(triage(stub), QUESTION))
        assert respan_instrument.flush(10)  # safely in the spool
        assert not collector.logs
        collector.set_outage(False)
        logs = logs_of(collector, 7)
    finally:
        collector.set_outage(False)
        respan_instrument.uninstrument()
    assert_one_trace(logs)
    assert len({log["span_unique_id"] for log in logs}) == 7  # each once


def test_ids_from_the_sdks_ids() -> None:
    from respan_instrument.record.agent_spans import root_int, span_int, trace_int

    hex32 = "0af7651916cd43dd8448eb211c80319c"
    assert trace_int(f"trace_{hex32}") == int(hex32, 16)
    assert span_int("span_b7ad6b7169203331aabbccdd") == 0xB7AD6B7169203331
    for odd in ("trace_my-own-id", "", "trace_" + "0" * 32):  # any id the SDK accepts: a stable W3C id
        assert 0 < trace_int(odd) < 1 << 128 and trace_int(odd) == trace_int(odd)
    assert 0 < span_int("custom span") < 1 << 64
    assert root_int(int(hex32, 16)) not in (0, int(hex32[:16], 16))


def test_input_guardrail_tripwire(traced: Collector, stub: OpenAIStub) -> None:
    @agents.input_guardrail
    async def no_capitals(ctx: Any, agent: Any, text: Any) -> Any:
        return agents.GuardrailFunctionOutput(output_info={}, tripwire_triggered="capital" in str(text))

    agent = agents.Agent(name="Strict", instructions="x", model=model(stub), input_guardrails=[no_capitals])
    with pytest.raises(agents.InputGuardrailTripwireTriggered):
        asyncio.run(agents.Runner.run(agent, QUESTION))
    logs = settled(traced, stub)  # (the model call may or may not have gone out meanwhile)
    guardrail = next(log for log in logs if log["log_type"] == "guardrail")
    assert guardrail["span_name"] == "no_capitals" and guardrail["metadata"]["triggered"] is True
