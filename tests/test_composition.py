"""Where the features of SPEC §13-§16 meet: privacy over every new kind of log, cost on the new
surfaces, Agents runs over the new transports, and the patch lifecycle with all of them. The
real SDKs against loopback servers; assertions on what the collector, the OTLP receiver and the
spool received."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import OPENAI_KEY, assert_none_of, delivered, spool_bytes, start

import respan_instrument
from respan_instrument.local import OpenAIStub

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
RAW = (EMAIL, CARD)


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

    async def main() -> None:
        async with openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0) as client:
            agent = agents.Agent(
                name="Desk",
                instructions="Use tools.",
                model=agents.OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client),
                tools=[tool],
            )
            with agents.custom_span("lookup step", {"customer": EMAIL}):
                await agents.Runner.run(agent, "Who is it?")

    with agents.trace("Support"):
        asyncio.run(main())


@pytest.fixture()
def agents_tracing() -> Iterator[None]:
    agents = pytest.importorskip("agents")
    provider = agents.tracing.get_trace_provider()
    before = list(provider._multi_processor._processors)
    agents.set_tracing_disabled(False)
    agents.set_trace_processors([])  # no SDK exporter: nothing may reach OpenAI's backend
    yield
    agents.set_tracing_disabled(True)
    agents.set_trace_processors(before)


def test_agents_run_redacted_in_logs_and_spool(done, agents_tracing, collector, stub, spool_dir) -> None:
    stub.clear()
    start(collector, redact="pii")
    _agents_run(stub)
    logs = delivered(collector, 6)
    assert_none_of(RAW, json.dumps(logs))
    assert_none_of(RAW, spool_bytes(spool_dir))
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
        assert_none_of(RAW, request.body)


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
    logs = delivered(collector, 6)
    text = json.dumps(logs)
    assert_none_of(RAW, text)
    assert "Who is it?" not in text
    for log in logs:
        assert not {"input", "output", "prompt_messages", "completion_message"} & set(log), log


def test_a_failing_redactor_drops_agents_content(done, agents_tracing, collector, stub) -> None:
    def broken(text: str) -> str:
        raise ValueError("no")

    stub.clear()
    start(collector, redact=broken)
    _agents_run(stub)
    logs = delivered(collector, 6)
    assert_none_of(RAW, json.dumps(logs))


# ---- cost on the new surfaces -----------------------------------------------------------------

SEARCHED = {
    "id": "ws_1",
    "type": "web_search_call",
    "status": "completed",
    "action": {"type": "search", "query": "weather in Paris"},
}
ANSWER_ITEM = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}],
}
TOKENS = {
    "input_tokens": 1000,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 100,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 1100,
}


def _searching_server() -> Any:
    """A Responses WebSocket server whose every response ran one web search."""
    pytest.importorskip("websockets")
    from tests.socket_servers import SocketServer, _Responses

    class Searching(_Responses):
        def respond(self, request: dict[str, Any]) -> bool:
            tools = [{"type": "web_search"}]
            created = self.response(request, "in_progress", [], id="resp_ws1", tools=tools)
            self.send("response.created", response=created)
            done = self.response(
                request, "completed", [SEARCHED, ANSWER_ITEM], id="resp_ws1", usage=TOKENS, tools=tools
            )
            self.send("response.completed", response=done)
            return True

    return SocketServer(lambda ws: Searching(ws).handle())


def _search_over_socket() -> None:
    import openai

    with _searching_server() as server:
        client = openai.OpenAI(
            api_key=OPENAI_KEY, base_url="http://127.0.0.1:9/v1", websocket_base_url=server.url
        )
        if not hasattr(client.responses, "connect"):
            pytest.skip("no Responses WebSocket mode in this SDK")
        with client.responses.connect() as conn:
            conn.response.create(model="gpt-4.1-mini", input="weather?", tools=[{"type": "web_search"}])
            for event in conn:
                if event.type == "response.completed":
                    break


def test_socket_response_bills_its_web_search(done, collector, stub, client) -> None:
    """The same answer over the socket and over HTTP costs the same, search fee included."""
    start(collector)
    _search_over_socket()
    (socket_log,) = delivered(collector, 1)
    collector.clear()
    stub.replay("responses", {**_http_answer(), "tools": [{"type": "web_search"}]})
    client.responses.create(model="gpt-4.1-mini", input="weather?", tools=[{"type": "web_search"}])
    (http_log,) = delivered(collector, 1)
    breakdown = http_log["metadata"]["cost_breakdown"]
    assert set(breakdown) >= {"tokens", "web_search"}
    assert socket_log["metadata"].get("cost_breakdown") == breakdown
    assert socket_log["cost"] == pytest.approx(http_log["cost"])


def _http_answer() -> dict[str, Any]:
    return {
        "id": "resp_http1",
        "object": "response",
        "created_at": 1_700_000_000,
        "model": "gpt-4.1-mini",
        "status": "completed",
        "output": [SEARCHED, ANSWER_ITEM],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "usage": TOKENS,
    }


# ---- Agents SDK model calls over the Responses WebSocket ----------------------------------------


def test_agents_model_calls_over_the_responses_websocket_are_logged_once_in_the_tree(
    done, agents_tracing, collector
) -> None:
    agents = pytest.importorskip("agents")
    pytest.importorskip("websockets")
    ws_model = getattr(agents, "OpenAIResponsesWSModel", None)
    if ws_model is None:
        pytest.skip("no Responses WebSocket model in this Agents SDK")
    import openai

    from tests.socket_servers import responses_server

    start(collector)
    with responses_server() as server:
        client = openai.AsyncOpenAI(
            api_key=OPENAI_KEY, base_url="http://127.0.0.1:9/v1", websocket_base_url=server.url
        )
        agent = agents.Agent(name="Sock", instructions="Be brief.", model=ws_model("gpt-4.1-mini", client))
        with agents.trace("Over the socket"):
            result = asyncio.run(agents.Runner.run(agent, "hi there"))
        assert result.final_output
    logs = delivered(collector, 3)
    by_type = {log["log_type"]: log for log in logs}
    assert set(by_type) == {"workflow", "agent", "response"}
    call = by_type["response"]
    assert call["trace_unique_id"] == by_type["workflow"]["trace_unique_id"]
    assert call["span_parent_id"] == by_type["agent"]["span_unique_id"]
    assert call["cost"] > 0 and call["prompt_tokens"] == 120
    assert call["stream"] is True and call["metadata"]["websocket"] == "true"
    assert "input" in call and "type" not in call
    assert OPENAI_KEY not in json.dumps(logs)


# ---- uninstrument() and instrument() again, with every new patch target --------------------------

SOCKET_CLASSES = (
    ("openai.resources.realtime.realtime", "RealtimeConnection"),
    ("openai.resources.beta.realtime.realtime", "RealtimeConnection"),
    ("openai.resources.responses.responses", "ResponsesConnection"),
    ("openai.resources.beta.responses.responses", "ResponsesConnection"),
    ("openai.resources.live.live", "LiveConnection"),
    ("openai.resources.realtime.translations", "TranslationsConnection"),
)


def _patchable() -> dict[str, Any]:
    """Every attribute of the SDKs that instrument() may wrap, as it is now."""
    import importlib

    from openai._base_client import AsyncAPIClient, SyncAPIClient

    found: dict[str, Any] = {}
    for cls in (SyncAPIClient, AsyncAPIClient):
        for name in ("request", "_process_response", "_send_request"):
            found[f"{cls.__name__}.{name}"] = vars(cls).get(name)
    for module, name in SOCKET_CLASSES:
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            continue
        for cls in (getattr(loaded, name, None), getattr(loaded, "Async" + name, None)):
            for method in ("__init__", "recv_bytes", "send", "close"):
                if cls is not None:
                    found[f"{module}.{cls.__name__}.{method}"] = vars(cls).get(method)
    try:
        from agents.models import openai_responses
        from agents.realtime import openai_realtime
    except ImportError:
        return found
    for cls in (
        getattr(openai_responses, "OpenAIResponsesWSModel", None),
        openai_realtime.OpenAIRealtimeWebSocketModel,
    ):
        for key, value in vars(cls).items() if cls is not None else ():
            if callable(value):
                found[f"{cls.__name__}.{key}"] = value
    from agents import tracing

    found["agents processors"] = tuple(tracing.get_trace_provider()._multi_processor._processors)
    return found


def test_uninstrument_restores_every_new_target_and_instrument_works_again(
    agents_tracing, collector, stub, client
) -> None:
    speech = {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "Hi there", "stream_format": "sse"}
    before = _patchable()
    assert before
    socket = hasattr(client.responses, "connect")  # (openai 1.x has no Responses WebSocket mode)
    kinds = ["response", "speech"] if socket else ["speech"]
    for _ in range(2):
        start(collector)
        client.audio.speech.create(**speech)  # (body timing is wrapped on its first call)
        if socket:
            _search_over_socket()
        logs = delivered(collector, len(kinds))
        assert sorted(log["log_type"] for log in logs) == kinds
        assert all(log["cost"] > 0 for log in logs)
        collector.clear()
        wrapped = {k for k, v in _patchable().items() if before.get(k) is not v}
        assert "SyncAPIClient.request" in wrapped
        if socket:
            assert "openai.resources.responses.responses.ResponsesConnection.recv_bytes" in wrapped
        if "OpenAIResponsesWSModel._open_websocket_connection" in before:
            assert "OpenAIResponsesWSModel._open_websocket_connection" in wrapped
            assert "OpenAIRealtimeWebSocketModel._handle_ws_event" in wrapped
        if before["SyncAPIClient._send_request"] is not None:
            assert "SyncAPIClient._send_request" in wrapped
        respan_instrument.uninstrument()
        after = _patchable()
        assert {k: v for k, v in after.items() if before.get(k) is not v} == {}
        assert after.keys() == before.keys()
        client.audio.speech.create(**speech)
        if socket:
            _search_over_socket()
        assert respan_instrument.flush(2)
        assert collector.logs == []


# ---- privacy over the socket sessions' logs ------------------------------------------------------


def _loud(text: str) -> str:
    return text.upper()


def _socket_client(server: Any) -> Any:
    from tests.socket_servers import socket_client

    return socket_client(server)


def _until(conn: Any, kind: str) -> None:
    from tests.socket_servers import events_until

    events_until(conn, kind)


def _live_session() -> int:
    """A Live session with a turn and a delegated Responses run: two logs."""
    pytest.importorskip("websockets")
    from tests.socket_servers import live_server

    with live_server() as server:
        client = _socket_client(server)
        if not hasattr(client, "live"):
            pytest.skip("no Live API in this SDK")
        with client.live.connect() as conn:
            conn.session.start(session={"model": "gpt-live-1", "instructions": "Be brief."})
            _until(conn, "session.started")
            conn.session.input_audio.append(audio="AAAA")
            _until(conn, "session.usage.updated")
            conn.response.create()
            _until(conn, "response.event")
            conn.session.close()
            _until(conn, "session.closed")
    return 2


def _translation_session() -> int:
    pytest.importorskip("websockets")
    from tests.socket_servers import translation_server

    with translation_server() as server:
        client = _socket_client(server)
        if not hasattr(getattr(getattr(client, "realtime", None), "translations", None), "connect"):
            pytest.skip("no realtime translations in this SDK")
        with client.realtime.translations.connect(model="gpt-realtime-translate") as conn:
            _until(conn, "session.created")
            conn.session.input_audio_buffer.append(audio="AAAA")
            _until(conn, "session.output_transcript.delta")
            conn.session.close()
            _until(conn, "session.closed")
    return 1


def _socket_response() -> int:
    _search_over_socket()
    return 1


SESSIONS = {"live": _live_session, "translation": _translation_session, "responses socket": _socket_response}
WORDS = (
    "what the caller said",
    "Hello from live",
    "Be brief",
    "Delegated answer",
    "Hola",
    "Hello, how",
    "Sunny",
    "weather?",
)


@pytest.mark.parametrize("surface", sorted(SESSIONS))
@pytest.mark.parametrize("how", ["redact", "sample_rate", "attributes", "otlp"])
def test_socket_logs_follow_the_privacy_settings(done, collector, surface, how) -> None:
    if how == "redact":
        start(collector, redact=_loud)
    elif how == "sample_rate":
        start(collector, sample_rate=0.0)
    elif how == "otlp":
        pytest.importorskip("opentelemetry.exporter.otlp.proto.common")
        start(collector, redact=_loud, export="otlp")
    else:
        start(collector)
    with respan_instrument.attributes(capture_content=False if how == "attributes" else None):
        n = SESSIONS[surface]()
    assert respan_instrument.flush(10)
    if how == "otlp":
        assert collector.wait_for_spans(n, timeout=10)
        sent = b"".join(request.body for request in collector.requests)
        for word in WORDS:
            assert word.encode() not in sent, word
        return
    logs = delivered(collector, n)
    text = json.dumps(logs)
    for word in WORDS:
        assert word not in text, word
    for log in logs:
        assert log.get("cost", 0) > 0, log  # the bill is whole whatever happens to the content
        if how == "redact":
            assert {"prompt_messages", "input", "output", "completion_message"} & set(log), log
        else:
            assert not {"prompt_messages", "input", "output", "completion_message", "instructions"} & set(
                log
            ), log


# ---- hosted Agents: input given where content was off --------------------------------------------


@pytest.mark.parametrize("how", ["attributes", "sample_rate"])
def test_hosted_agent_turn_keeps_out_input_submitted_without_content(done, collector, how) -> None:
    """The input an app submits (`events.create`) inside `attributes(capture_content=False)`, or in
    a trace sampled out, stays out of the log of the turn it starts, even when the call that shows
    the turn finished (here the turn read as an object) keeps its content."""
    import openai

    client = openai.OpenAI(api_key=OPENAI_KEY, base_url="http://127.0.0.1:9/v1")
    if not hasattr(getattr(getattr(client, "beta", None), "agents", None), "sessions"):
        pytest.skip("no hosted Agents in this SDK")
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext

    from tests.agents_stub import AgentsStub
    from tests.test_hosted_agents import _client

    def in_trace(keeps: bool) -> Any:  # a trace the sample keeps (low 64 bits under the bound) or not
        trace_id = (0x1234 << 64) | (1 if keeps else (1 << 64) - 1)
        return otel_trace.use_span(NonRecordingSpan(SpanContext(trace_id, 1, False)))

    start(collector, sample_rate=0.5)
    stub = AgentsStub()
    sessions = _client(stub).beta.agents.sessions
    with in_trace(True):
        session = sessions.create(environment={"type": "none"}, agent_id="agent_stub")
    event = {"type": "agent.session.input.message", "input": [{"role": "user", "content": f"card {CARD}"}]}
    if how == "attributes":
        with in_trace(True), respan_instrument.attributes(capture_content=False):
            sessions.events.create(session.id, events=[event])
    else:
        with in_trace(False):
            sessions.events.create(session.id, events=[event])
    stub.run_turn(session.id)  # the turn ran where the app did not watch it
    with in_trace(True):
        (turn,) = sessions.turns.list(session.id)
    (log,) = delivered(collector, 1)
    assert log["log_type"] == "agent" and log["cost"] > 0
    assert log["metadata"]["agent_turn_id"] == turn.id
    assert CARD not in json.dumps(log)
    assert "input" not in log


def test_agents_runs_are_sampled_whole(done, agents_tracing, collector, stub) -> None:
    """At a sample rate of one half, each run keeps the content of all its logs or of none."""
    stub.clear()
    start(collector, sample_rate=0.5)
    for _ in range(8):
        _agents_run(stub)
    logs = delivered(collector, 8 * 6)
    by_trace: dict[str, set[bool]] = {}
    for log in logs:
        if log["log_type"] in ("response", "tool", "task"):
            kept = bool({"input", "output"} & set(log)) or bool(
                {"error_data", "customer"} & set(log.get("metadata") or {})
            )
            by_trace.setdefault(log["trace_unique_id"], set()).add(kept)
    assert len(by_trace) == 8
    assert all(len(kinds) == 1 for kinds in by_trace.values()), by_trace


def test_otlp_spans_of_socket_responses_and_agents_runs_carry_the_bill(
    done, agents_tracing, collector, stub
) -> None:
    """A web search over the socket: its span has the cost and each line; an Agents run: its
    model calls' spans have their cost, its own spans none (no cost counted twice)."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.common")
    stub.clear()
    start(collector, export="otlp")
    _search_over_socket()
    assert respan_instrument.flush(10)
    assert collector.wait_for_spans(1, timeout=10)
    (span,) = collector.spans
    attributes = span["attributes"]
    assert attributes["gen_ai.usage.cost.web_search"] == pytest.approx(0.01)
    assert attributes["gen_ai.usage.cost"] == pytest.approx(
        attributes["gen_ai.usage.cost.web_search"] + attributes["gen_ai.usage.cost.tokens"]
    )
    collector.clear()
    _agents_run(stub)
    assert respan_instrument.flush(10)
    assert collector.wait_for_spans(6, timeout=10)
    costs = [
        span["attributes"]["gen_ai.usage.cost"]
        for span in collector.spans
        if span["attributes"].get("gen_ai.usage.cost") is not None
    ]
    calls = [
        span
        for span in collector.spans
        if span["attributes"].get("gen_ai.operation.name") in ("chat", "responses")
    ]
    assert len(calls) == 2 and len(costs) == 2 and all(cost > 0 for cost in costs), costs


def test_app_spans_of_an_agents_runs_model_calls_follow_the_runs_sample(
    agents_tracing, collector, stub, sdk_spans
) -> None:
    """The application's own span of a model call made in an Agents run carries content exactly
    when the call's log does: both follow the run's trace, sampled whole."""
    provider, exporter = sdk_spans
    stub.clear()
    start(collector, sample_rate=0.5, tracer_provider=provider)
    try:
        for _ in range(12):
            _agents_run(stub)
        logs = delivered(collector, 12 * 6)
    finally:
        respan_instrument.uninstrument()
    spans = {span.context.span_id: span for span in exporter.get_finished_spans()}
    calls = [log for log in logs if log["log_type"] == "response"]
    assert len(calls) == 24
    kept = set()
    for log in calls:
        span = spans[int(log["span_unique_id"], 16)]
        has = any(key.startswith(("gen_ai.input", "gen_ai.prompt")) for key in span.attributes)
        assert has == ("input" in log), (log["trace_unique_id"], dict(span.attributes))
        kept.add(has)
    assert kept == {True, False}


@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_agents_runs_keep_content_at_the_sample_rate(done, agents_tracing, collector, rate) -> None:
    """The Agents SDK's trace ids are uuid4s (fixed version and variant bits): the fraction of
    runs that keep their content is still the rate."""
    agents = pytest.importorskip("agents")
    start(collector, sample_rate=rate)
    runs = 200
    for _ in range(runs):
        with agents.trace("Sampled"), agents.custom_span("step", {"note": "private"}):
            pass
    logs = delivered(collector, 2 * runs)
    kept = sum("note" in (log.get("metadata") or {}) for log in logs if log["log_type"] == "task")
    assert abs(kept - rate * runs) < 5 * (rate * (1 - rate) * runs) ** 0.5, kept


# ---- secrets in tool definitions ------------------------------------------------------------------

MCP_SECRET = "mcp-token-0f9e8d7c6b5a"
MCP_TOOL = {
    "type": "mcp",
    "server_label": "crm",
    "server_url": "https://mcp.example.com/sse",
    "authorization": MCP_SECRET,
    "headers": {"X-Api-Key": MCP_SECRET},
    "require_approval": "never",
}


def test_mcp_credentials_in_tools_never_reach_a_log(done, collector, stub, client) -> None:
    """An MCP tool's `authorization` and `headers` are credentials: the log's `tools` leaves them
    out, over HTTP and over the Responses WebSocket, in request logs and OTLP spans alike."""
    start(collector)
    tools = [dict(MCP_TOOL)]
    client.responses.create(model="gpt-4.1-mini", input="hi", tools=tools)  # type: ignore[list-item]
    assert tools == [MCP_TOOL]  # the caller's objects untouched
    n = 1
    if hasattr(client.responses, "connect"):
        pytest.importorskip("websockets")
        from tests.socket_servers import responses_server

        with responses_server() as server, _socket_client(server).responses.connect() as conn:
            conn.response.create(model="gpt-4.1-mini", input="hi", tools=tools)  # type: ignore[list-item]
            _until(conn, "response.completed")
        n = 2
    logs = delivered(collector, n)
    assert MCP_SECRET not in json.dumps(logs)
    for log in logs:
        assert log["tools"] == [{k: v for k, v in MCP_TOOL.items() if k not in ("authorization", "headers")}]


def test_mcp_credentials_stay_out_of_otlp_spans(done, collector, stub, client) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.common")
    start(collector, export="otlp")
    client.responses.create(model="gpt-4.1-mini", input="hi", tools=[MCP_TOOL])  # type: ignore[list-item]
    assert respan_instrument.flush(10)
    assert collector.wait_for_spans(1, timeout=10)
    for request in collector.requests:
        assert MCP_SECRET.encode() not in request.body


def test_translation_of_a_model_no_source_prices_has_no_cost(done, collector) -> None:
    """Priced per audio time where a price is known; never a cost of 0 where none is."""
    pytest.importorskip("websockets")
    from tests.socket_servers import translation_server

    start(collector)
    with translation_server() as server:
        client = _socket_client(server)
        if not hasattr(getattr(getattr(client, "realtime", None), "translations", None), "connect"):
            pytest.skip("no realtime translations in this SDK")
        for model in ("gpt-realtime-translate-2099", "gpt-realtime-translate"):
            with client.realtime.translations.connect(model=model) as conn:
                _until(conn, "session.created")
                conn.session.input_audio_buffer.append(audio="AAAA")
                _until(conn, "session.output_transcript.delta")
                conn.session.close()
                _until(conn, "session.closed")
    logs = {log["model"]: log for log in delivered(collector, 2)}
    assert "cost" not in logs["gpt-realtime-translate-2099"]
    assert logs["gpt-realtime-translate"]["cost"] > 0


@pytest.mark.parametrize("surface", sorted(SESSIONS))
def test_socket_logs_reach_the_spool_redacted(done, collector, spool_dir, surface) -> None:
    collector.set_outage(True)  # Respan unreachable: the logs wait in the spool
    start(collector, redact=_loud)
    n = SESSIONS[surface]()
    respan_instrument.flush(1)  # (spooled: Respan is not accepting)
    data = spool_bytes(spool_dir)
    assert b'"log_type"' in data  # the logs are there, and only redacted
    for word in WORDS:
        assert word.encode() not in data, word
    collector.set_outage(False)
    logs = delivered(collector, n)
    assert all(log.get("cost", 0) > 0 for log in logs)


def test_agents_websocket_model_reused_takes_each_runs_attributes(done, agents_tracing, collector) -> None:
    """One websocket model object serves many runs: each model call's log has the attributes (and
    content choice) of the run it was made in, not those of the first run."""
    agents = pytest.importorskip("agents")
    pytest.importorskip("websockets")
    ws_model = getattr(agents, "OpenAIResponsesWSModel", None)
    if ws_model is None:
        pytest.skip("no Responses WebSocket model in this Agents SDK")
    import openai

    from tests.socket_servers import responses_server

    start(collector)
    with responses_server() as server:

        async def main() -> None:
            client = openai.AsyncOpenAI(
                api_key=OPENAI_KEY, base_url="http://127.0.0.1:9/v1", websocket_base_url=server.url
            )
            agent = agents.Agent(
                name="Sock", instructions="Be brief.", model=ws_model("gpt-4.1-mini", client)
            )
            with respan_instrument.attributes(customer_identifier="first"):
                await agents.Runner.run(agent, "hi there")
            with respan_instrument.attributes(customer_identifier="second", capture_content=False):
                await agents.Runner.run(agent, "private words")
            await client.close()

        asyncio.run(main())
    logs = delivered(collector, 6)
    calls = sorted((log for log in logs if log["log_type"] == "response"), key=lambda log: log["start_time"])
    assert [log.get("customer_identifier") for log in calls] == ["first", "second"]
    assert "private words" not in json.dumps(logs)


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
@pytest.mark.parametrize("how", ["redact", "sample_rate", "attributes"])
def test_realtime_transcription_logs_follow_the_privacy_settings(done, collector, how) -> None:
    pytest.importorskip("websockets")
    from tests.realtime_server import AUDIO_CHUNK, TRANSCRIPT, RealtimeServer

    if how == "redact":
        start(collector, redact=_loud)
    else:
        start(collector, sample_rate=0.0 if how == "sample_rate" else 1.0)
    with RealtimeServer() as server:
        client = _socket_client(server)
        if not hasattr(client, "realtime"):
            pytest.skip("no realtime in this SDK")
        session = {"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
        with respan_instrument.attributes(capture_content=False if how == "attributes" else None):
            with client.realtime.connect(model="gpt-realtime") as conn:
                conn.send({"type": "session.update", "session": session})  # type: ignore[arg-type]
                conn.input_audio_buffer.append(audio=AUDIO_CHUNK)
                conn.input_audio_buffer.commit()
                _until(conn, "conversation.item.input_audio_transcription.completed")
    (log,) = delivered(collector, 1)
    assert log["log_type"] == "transcription" and log["cost"] > 0
    assert TRANSCRIPT not in json.dumps(log)
    if how == "redact":
        assert log["output"] == TRANSCRIPT.upper()
    else:
        assert "output" not in log and "input" not in log
