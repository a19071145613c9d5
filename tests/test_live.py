"""Live API sessions (SPEC §13): `live.connect()`, `live.sideband.connect()` and
`live.forks.connect()`, sync and async, against a loopback server whose events are the SDK's own
types. A session is one `chat` log with its billable seconds; each delegated Responses run is a
`response` log in the session's thread and trace."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from conftest import delivered, sdk_has, start

import respan_instrument
from tests.socket_servers import events_until as _until
from tests.socket_servers import socket_client as _client

pytest.importorskip("websockets")
openai = pytest.importorskip("openai")
pytestmark = pytest.mark.skipif(
    not sdk_has("live"),
    reason="no Live API in this SDK",
)
PER_MINUTE = 3 / 60  # gpt-live-1 in genai-prices: USD 3 an hour of session


@pytest.fixture(scope="module")
def server() -> Any:
    from tests.socket_servers import live_server

    with live_server() as srv:
        yield srv
    assert not srv.errors


def _start(conn: Any, model: str = "gpt-live-1") -> str:
    conn.session.start(session={"model": model, "instructions": "Be brief."})
    return str(_until(conn, "session.started")[-1].session.id)


def _turn(conn: Any) -> None:
    conn.session.input_audio.append(audio="AAAA")
    _until(conn, "session.usage.updated")


def test_session_closed_is_one_log(instrumented: Any, server: Any) -> None:
    from tests.socket_servers import HEARD, SAID

    with _client(server).live.connect() as conn:
        session_id = _start(conn)
        _turn(conn)
        _turn(conn)
        conn.session.close()
        (closed,) = [e for e in conn if e.type == "session.closed"]
    assert closed.usage.seconds == 12
    (log,) = delivered(instrumented, 1)
    assert log["log_type"] == "chat" and log["model"] == "gpt-live-1" and log["status"] == "success"
    assert log["usage"] == {"seconds": 12, "active_seconds": 11, "paused_seconds": 1}
    assert "prompt_tokens" not in log
    assert log["cost"] == pytest.approx(12 / 60 * PER_MINUTE)
    assert log["thread_identifier"] == session_id and log["metadata"]["live"] == "true"
    assert log["prompt_messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": HEARD * 2},
    ]
    assert log["completion_message"] == {"role": "assistant", "content": SAID * 2}
    assert "stream_cut_short" not in log.get("metadata", {})


def test_delegated_run_is_a_response_log_in_the_session_trace(instrumented: Any, server: Any) -> None:
    from tests.socket_servers import DELEGATED

    with _client(server).live.connect() as conn:
        session_id = _start(conn)
        conn.response.create()
        _until(conn, "response.event")
        for event in conn:
            if event.type == "response.event" and event.event.get("type") == "response.completed":
                break
        _turn(conn)
        conn.session.close()
        _until(conn, "session.closed")
    logs = delivered(instrumented, 2)
    (session,) = [log for log in logs if log["log_type"] == "chat"]
    (run,) = [log for log in logs if log["log_type"] == "response"]
    assert run["model"] == "gpt-4.1-mini" and run["output"][0]["content"][0]["text"] == DELEGATED
    assert run["prompt_tokens"] == 120 and run["cost"] > 0 and run["stream"] is True
    assert run["thread_identifier"] == session["thread_identifier"] == session_id
    assert run["trace_unique_id"] == session["trace_unique_id"]
    assert run["span_parent_id"] == session["span_unique_id"]
    assert session["usage"]["seconds"] == 6


def test_server_hangup_logs_the_last_usage(instrumented: Any, server: Any) -> None:
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed), _client(server).live.connect() as conn:
        _start(conn)
        _turn(conn)
        conn.session.instructions.append(content="hangup", delegation_id=None)
        for _ in conn:
            pass
    (log,) = delivered(instrumented, 1)
    assert log["usage"]["seconds"] == 6 and log["metadata"]["stream_cut_short"] == "true"
    assert log["cost"] == pytest.approx(6 / 60 * PER_MINUTE)


def test_app_close_and_drop_log_once(instrumented: Any, server: Any) -> None:
    with _client(server).live.connect() as conn:
        _start(conn)
        _turn(conn)
    dropped = _client(server).live.connect().enter()
    _start(dropped)
    _turn(dropped)
    _turn(dropped)
    del dropped
    gc.collect()
    logs = sorted(delivered(instrumented, 2), key=lambda log: log["usage"]["seconds"])
    assert [log["usage"]["seconds"] for log in logs] == [6, 12]
    assert all(log["metadata"]["stream_cut_short"] == "true" for log in logs)


def test_unstarted_connection_makes_no_log(instrumented: Any, server: Any) -> None:
    with _client(server).live.connect():
        pass
    assert respan_instrument.flush(10)
    assert not instrumented.logs


def test_unknown_model_has_no_cost(instrumented: Any, server: Any) -> None:
    with _client(server).live.connect() as conn:
        _start(conn, model="gpt-live-from-nowhere")
        _turn(conn)
        conn.session.close()
        _until(conn, "session.closed")
    (log,) = delivered(instrumented, 1)
    assert log["model"] == "gpt-live-from-nowhere" and "cost" not in log


def test_sideband_sees_the_close_and_the_session_is_logged_once(instrumented: Any, server: Any) -> None:
    client = _client(server)
    with client.live.connect() as primary:
        session_id = _start(primary)
        with client.live.sideband.connect(session_id=session_id) as sideband:
            _until(sideband, "session.usage.updated")
            sideband.session.close()
            (closed,) = [e for e in sideband if e.type == "session.closed"]
    (log,) = delivered(instrumented, 1)
    assert log["thread_identifier"] == session_id and log["usage"]["seconds"] == closed.usage.seconds == 30
    assert log["model"] == "gpt-live-1"


def test_fork_is_its_own_session(instrumented: Any, server: Any) -> None:
    client = _client(server)
    with client.live.connect() as conn:
        stored = _start(conn)
        conn.session.close()
        _until(conn, "session.closed")
    with client.live.forks.connect(session_id=stored) as fork:
        fork.session.start(session={})  # type: ignore[typeddict-item]
        forked = _until(fork, "session.started")[-1].session.id
        _turn(fork)
        fork.session.close()
        _until(fork, "session.closed")
    logs = delivered(instrumented, 2)
    assert {log["thread_identifier"] for log in logs} == {stored, forked} and forked != stored
    assert {log["model"] for log in logs} == {"gpt-live-1"}


def test_async_session(instrumented: Any, server: Any) -> None:
    async def session() -> None:
        async with _client(server, is_async=True).live.connect() as conn:
            await conn.session.start(session={"model": "gpt-live-1"})
            await conn.session.input_audio.append(audio="AAAA")
            await conn.response.create()
            async for event in conn:
                if event.type == "response.event" and event.event.get("type") == "response.completed":
                    break
            await conn.session.close()
            async for event in conn:
                if event.type == "session.closed":
                    break

    asyncio.run(session())
    logs = delivered(instrumented, 2)
    assert sorted(log["log_type"] for log in logs) == ["chat", "response"]


def test_spans_nest(traced: Any, server: Any) -> None:
    _, exporter = traced
    with _client(server).live.connect() as conn:
        _start(conn)
        conn.response.create()
        for event in conn:
            if event.type == "response.event" and event.event.get("type") == "response.completed":
                break
        _turn(conn)
        conn.session.close()
        _until(conn, "session.closed")
    respan_instrument.flush(10)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    session, run = spans["chat gpt-live-1"], spans["chat gpt-4.1-mini"]
    assert run.parent is not None and run.parent.span_id == session.context.span_id
    assert session.attributes["gen_ai.usage.cost"] > 0 and run.attributes["gen_ai.usage.input_tokens"] == 120


def _live_events(server: Any) -> list[str]:
    with _client(server).live.connect() as conn:
        _start(conn)
        conn.response.create()
        events = []
        for event in conn:
            events.append(event)
            if event.type == "response.event" and event.event.get("type") == "response.completed":
                break
        _turn(conn)
        conn.session.close()
        events += _until(conn, "session.closed")
    return [
        type(e).__name__ + (e.event.get("type", "") if e.type == "response.event" else "") for e in events
    ]


def test_events_unchanged(collector: Any, server: Any) -> None:

    bare = _live_events(server)
    start(collector)
    try:
        assert _live_events(server) == bare
        assert len(delivered(collector, 2)) == 2
    finally:
        respan_instrument.uninstrument()
