"""Hosted Agents (SPEC §13): `beta.agents.sessions` calls, sync and async, against an httpx2
transport whose bodies and events are the SDK's own types. Each agent turn the app sees finish is
one `agent` log, once, with its input, output, usage, cost, the session's model and thread."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from answers import genai_usd
from conftest import OPENAI_KEY, delivered, sdk_has

import respan_instrument

openai = pytest.importorskip("openai")


pytestmark = pytest.mark.skipif(
    not sdk_has("beta", "agents", "sessions"), reason="no hosted Agents in this SDK"
)
# a turn of the stub's: 300 input tokens (100 of them cached) and 50 output, on gpt-4.1-mini
USD = genai_usd("gpt-4.1-mini", input_tokens=300, cache_read_tokens=100, output_tokens=50)


@pytest.fixture()
def agents() -> Any:
    from tests.agents_stub import AgentsStub

    return AgentsStub()


def _client(stub: Any, is_async: bool = False) -> Any:
    import httpx2

    if is_async:
        http: Any = httpx2.AsyncClient(transport=stub.transport(True))
        return openai.AsyncOpenAI(
            api_key=OPENAI_KEY, base_url="https://api.openai.com/v1", http_client=http, max_retries=0
        )
    http = httpx2.Client(transport=stub.transport())
    return openai.OpenAI(
        api_key=OPENAI_KEY, base_url="https://api.openai.com/v1", http_client=http, max_retries=0
    )


def test_create_stream_logs_its_turn(instrumented: Any, agents: Any) -> None:
    from tests.agents_stub import ANSWER, MODEL

    sessions = _client(agents).beta.agents.sessions
    with sessions.create(
        environment={"type": "none"}, agent_id="agent_stub", input="what is up?", stream=True
    ) as events:
        seen = [event.type for event in events]
    assert "agent.session.turn.completed" in seen
    (log,) = delivered(instrumented, 1)
    assert log["log_type"] == "agent" and log["model"] == MODEL and log["status"] == "success"
    assert log["input"][0]["content"][0]["text"] == "what is up?"
    assert log["output"][0]["content"][0]["text"] == ANSWER
    assert log["prompt_tokens"] == 300 and log["completion_tokens"] == 50
    assert log["prompt_cache_hit_tokens"] == 100 and log["reasoning_tokens"] == 20
    assert log["cost"] == pytest.approx(USD)
    assert log["thread_identifier"].startswith("asess_") and log["metadata"]["agent_turn_id"].startswith(
        "turn_"
    )


def test_sessions_stream_helper_and_events_create(instrumented: Any, agents: Any) -> None:
    from tests.agents_stub import ANSWER

    sessions = _client(agents).beta.agents.sessions
    session = sessions.create(environment={"type": "none"}, agent_id="agent_stub")
    with sessions.stream(session.id, input="first question") as stream:
        for _ in stream:
            pass
    sessions.events.create(
        session.id,
        events=[{"type": "agent.session.input.message", "input": [{"role": "user", "content": "second"}]}],
    )
    with sessions.events.stream(session.id) as events:
        for _ in events:
            pass
    logs = sorted(delivered(instrumented, 2), key=lambda log: log["metadata"]["agent_turn_id"])
    assert [log["input"][0]["content"][0]["text"] for log in logs] == ["first question", "second"]
    assert {log["thread_identifier"] for log in logs} == {session.id}
    assert all(log["output"][0]["content"][0]["text"] == ANSWER for log in logs)


def test_a_turn_seen_again_is_not_logged_again(instrumented: Any, agents: Any) -> None:
    sessions = _client(agents).beta.agents.sessions
    session = sessions.create(environment={"type": "none"}, agent_id="agent_stub", input="hello")
    with sessions.events.stream(session.id) as events:
        turn_id = next(e.turn_id for e in events if e.type == "agent.session.turn.completed")
    with sessions.events.stream(session.id, extra_query={"replay": "1"}) as events:
        assert any(e.type == "agent.session.turn.completed" for e in events)
    assert sessions.turns.retrieve(turn_id, session_id=session.id).status == "completed"
    assert [t.id for t in sessions.turns.list(session.id)] == [turn_id]
    (log,) = delivered(instrumented, 1)
    assert log["metadata"]["agent_turn_id"] == turn_id


def test_turn_read_as_an_object_is_logged(instrumented: Any, agents: Any) -> None:
    client = _client(agents)
    session = client.beta.agents.sessions.create(
        environment={"type": "none"}, agent_id="agent_stub", input="hi"
    )
    with respan_instrument.attributes(customer_identifier="c1"):  # (the stream made no log: suppressed)
        pass
    agents.run_turn(session.id)  # the turn ran where the app did not watch it
    (turn,) = client.beta.agents.sessions.turns.list(session.id)
    (log,) = delivered(instrumented, 1)
    assert log["metadata"]["agent_turn_id"] == turn.id and log["model"] == "gpt-4.1-mini"
    assert log["prompt_tokens"] == 300 and "output" not in log
    assert log["input"] == [{"role": "user", "content": "hi"}]


def test_failed_turn_is_an_error(instrumented: Any, agents: Any) -> None:
    sessions = _client(agents).beta.agents.sessions
    with sessions.create(
        environment={"type": "none"}, agent_id="agent_stub", input="please fail", stream=True
    ) as events:
        for _ in events:
            pass
    (log,) = delivered(instrumented, 1)
    assert log["status"] == "error" and "The stub failed this turn." in log["error_message"]
    assert log["prompt_tokens"] == 300


def test_async_stream(instrumented: Any, agents: Any) -> None:
    async def run() -> None:
        sessions = _client(agents, is_async=True).beta.agents.sessions
        events = await sessions.create(
            environment={"type": "none"}, agent_id="agent_stub", input="hi", stream=True
        )
        async with events:
            async for _ in events:
                pass

    asyncio.run(run())
    (log,) = delivered(instrumented, 1)
    assert log["log_type"] == "agent" and log["cost"] == pytest.approx(USD)


def test_traced_stream_logs_its_turn(traced: Any, collector: Any, agents: Any) -> None:
    sessions = _client(agents).beta.agents.sessions
    with sessions.create(
        environment={"type": "none"}, agent_id="agent_stub", input="hi", stream=True
    ) as events:
        for _ in events:
            pass
    (log,) = delivered(collector, 1)
    assert log["log_type"] == "agent" and log["prompt_tokens"] == 300


def test_final_result_helper_is_seen(instrumented: Any, agents: Any) -> None:
    from tests.agents_stub import ANSWER

    sessions = _client(agents).beta.agents.sessions
    stream = sessions.create(environment={"type": "none"}, agent_id="agent_stub", input="hi", stream=True)
    result = stream.get_final_result()  # (the SDK reads its own stream: no loop of the app's)
    assert result is not None
    (log,) = delivered(instrumented, 1)
    assert log["output"][0]["content"][0]["text"] == ANSWER and log["prompt_tokens"] == 300


def test_raw_and_streaming_response_wrappers(instrumented: Any, agents: Any) -> None:
    sessions = _client(agents).beta.agents.sessions
    session = sessions.with_raw_response.create(
        environment={"type": "none"}, agent_id="agent_stub", input="one"
    ).parse()
    with sessions.events.with_streaming_response.stream(session.id) as response:
        for _ in response.parse():
            pass
    (log,) = delivered(instrumented, 1)
    assert log["model"] == "gpt-4.1-mini" and log["input"][0]["content"][0]["text"] == "one"
    assert log["thread_identifier"] == session.id and log["prompt_tokens"] == 300


def test_other_agent_calls_make_no_log(instrumented: Any, agents: Any) -> None:
    sessions = _client(agents).beta.agents.sessions
    session = sessions.create(environment={"type": "none"}, agent_id="agent_stub")
    sessions.retrieve(session.id)
    sessions.events.create(
        session.id,
        events=[{"type": "agent.session.input.message", "input": [{"role": "user", "content": "x"}]}],
    )
    assert respan_instrument.flush(10)
    assert not instrumented.logs


def test_final_result_helper_is_seen_with_a_tracer(traced: Any, collector: Any, agents: Any) -> None:
    sessions = _client(agents).beta.agents.sessions
    stream = sessions.create(environment={"type": "none"}, agent_id="agent_stub", input="hi", stream=True)
    assert stream.get_final_result() is not None
    (log,) = delivered(collector, 1)
    assert log["prompt_tokens"] == 300
