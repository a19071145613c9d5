"""Responses WebSocket mode (SPEC §13): `responses.connect()` and `beta.responses.connect()`, sync
and async, against a loopback server whose events are the SDK's own types. Each response that
runs on the socket is one `response` log, as a streamed Responses call, however it ends."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from answers import genai_usd
from conftest import delivered, sdk_has, start

import respan_instrument

pytest.importorskip("websockets")
openai = pytest.importorskip("openai")

from tests.socket_servers import socket_client, surface  # noqa: E402

pytestmark = pytest.mark.skipif(
    not sdk_has("responses", "connect"), reason="no Responses WebSocket mode in this SDK"
)
PATHS = ["responses", "beta.responses"]
MODEL = "gpt-4.1-mini"


@pytest.fixture(scope="module")
def server() -> Any:
    from tests.socket_servers import responses_server

    with responses_server() as srv:
        yield srv
    assert not srv.errors


def _connect(server: Any, path: str = "responses", is_async: bool = False) -> Any:
    return surface(socket_client(server, is_async), path).connect()


def _ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": [{"role": "user", "content": text}], **extra}


def _until_done(conn: Any) -> list[Any]:
    events = []
    for event in conn:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "response.incomplete", "error"):
            return events
    return events


@pytest.mark.parametrize("path", PATHS)
def test_completed_response_is_one_streamed_log(instrumented: Any, server: Any, path: str) -> None:
    from tests.socket_servers import REPLY

    with _connect(server, path) as conn:
        conn.response.create(**_ask("hi there", temperature=0.2))
        events = _until_done(conn)
    assert events[-1].type == "response.completed"
    (log,) = delivered(instrumented, 1)
    assert log["log_type"] == "response" and log["model"] == MODEL and log["stream"] is True
    assert log["input"] == [{"role": "user", "content": "hi there"}] and log["temperature"] == 0.2
    assert log["output"][0]["content"][0]["text"] == REPLY
    assert log["prompt_tokens"] == 120 and log["completion_tokens"] == 40
    assert log["prompt_cache_hit_tokens"] == 20 and log["reasoning_tokens"] == 8
    assert log["cost"] == pytest.approx(
        genai_usd(MODEL, input_tokens=120, cache_read_tokens=20, output_tokens=40)
    )
    assert 0 <= log["ttft"] <= log["generation_time"]
    assert log["status"] == "success" and log["metadata"]["websocket"] == "true"
    assert "thread_identifier" not in log


def test_previous_response_chain_is_the_thread(instrumented: Any, server: Any) -> None:
    with _connect(server) as conn:
        conn.response.create(**_ask("one"))
        first = _until_done(conn)[-1].response.id
        conn.response.create(**_ask("two", previous_response_id=first))
        second = _until_done(conn)[-1].response.id
        conn.response.create(**_ask("three", previous_response_id=second))
        _until_done(conn)
    logs = sorted(delivered(instrumented, 3), key=lambda log: log["start_time"])
    assert [log.get("thread_identifier") for log in logs] == [None, first, first]
    assert [log["input"][0]["content"] for log in logs] == ["one", "two", "three"]


def test_server_started_successor_is_its_own_log(instrumented: Any, server: Any) -> None:
    with _connect(server) as conn:
        conn.response.create(**_ask("successor please"))
        first = _until_done(conn)[-1].response
        second = _until_done(conn)[-1].response
        assert second.previous_response_id == first.id
        steered = {"input": [{"role": "user", "content": "steered words"}], "previous_response_id": second.id}
        if hasattr(conn.response, "steer"):
            conn.response.steer(**steered)
        else:  # (an SDK before the steer helper: the event itself)
            conn.send({"type": "response.steer", **steered})
        third = _until_done(conn)[-1].response
    logs = sorted(delivered(instrumented, 3), key=lambda log: log["start_time"])
    assert [log["status"] for log in logs] == ["success"] * 3
    assert {log["thread_identifier"] for log in logs[1:]} == {first.id}
    assert logs[2]["input"] == [{"role": "user", "content": "steered words"}]
    assert logs[2]["output"][0]["id"] == third.output[0].id
    assert logs[1]["model"] == MODEL and logs[1]["prompt_tokens"] == 120


def test_failed_incomplete_and_refused(instrumented: Any, server: Any) -> None:
    with _connect(server) as conn:
        for text in ("please fail", "incomplete", "error out"):
            conn.response.create(**_ask(text))
            _until_done(conn)
    failed, incomplete, refused = sorted(delivered(instrumented, 3), key=lambda log: log["start_time"])
    assert failed["status"] == "error" and "The stub failed this response." in failed["error_message"]
    assert incomplete["status"] == "success" and incomplete["completion_tokens"] == 40
    from openai.types.responses import responses_server_event

    # (an SDK whose error event carries the HTTP status: 3.x)
    status = 400 if hasattr(responses_server_event, "ResponseWsError") else None
    assert refused["status"] == "error" and refused.get("status_code") == status
    assert (
        refused["error_message"].endswith("The stub refused it.")
        and refused["input"][0]["content"] == "error out"
    )


def test_server_hangup_is_cut_short(instrumented: Any, server: Any) -> None:
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed), _connect(server) as conn:
        conn.response.create(**_ask("hangup"))
        for _ in conn:
            pass
    (log,) = delivered(instrumented, 1)
    assert log["metadata"]["stream_cut_short"] == "true"
    assert log["output"][0]["content"][0]["text"] == "Hello from "


def test_app_close_and_drop_are_cut_short_once(instrumented: Any, server: Any) -> None:
    with _connect(server) as conn:
        conn.response.create(**_ask("wait"))
        for event in conn:
            if event.type == "response.output_text.delta" and event.delta == "from ":
                break
    dropped = _connect(server).enter()
    dropped.response.create(**_ask("wait"))
    for event in dropped:
        if event.type == "response.output_text.delta":
            break
    del dropped, event
    gc.collect()
    logs = delivered(instrumented, 2)
    assert all(log["metadata"]["stream_cut_short"] == "true" for log in logs)
    assert sorted(log["output"][0]["content"][0]["text"] for log in logs) == ["Hello ", "Hello from "]


@pytest.mark.parametrize("path", PATHS)
def test_async_completed_and_closed(instrumented: Any, server: Any, path: str) -> None:
    async def session() -> None:
        async with _connect(server, path, is_async=True) as conn:
            await conn.response.create(**_ask("hi"))
            async for event in conn:
                if event.type == "response.completed":
                    break
            await conn.response.create(**_ask("wait"))
            async for event in conn:
                if event.type == "response.output_text.delta":
                    break

    asyncio.run(session())
    done, cut = sorted(delivered(instrumented, 2), key=lambda log: log["start_time"])
    assert done["status"] == "success" and "stream_cut_short" not in done.get("metadata", {})
    assert (
        cut["metadata"]["stream_cut_short"] == "true" and cut["output"][0]["content"][0]["text"] == "Hello "
    )


def _events(server: Any) -> list[str]:
    with _connect(server) as conn:
        conn.response.create(**_ask("successor"))
        events = _until_done(conn) + _until_done(conn)
        conn.send({"type": "response.create", **_ask("incomplete")})
        events.append(conn.parse_event(conn.recv_bytes()))
        events += _until_done(conn)
    return [
        type(e).__name__
        + e.to_json(indent=None).replace(e.response.id if hasattr(e, "response") else "\0", "*")
        for e in events
    ]


def test_events_unchanged(collector: Any, server: Any) -> None:
    bare = _events(server)
    start(collector)
    try:
        ours = _events(server)
        assert [e.split("{")[0] for e in ours] == [e.split("{")[0] for e in bare]
        assert len(ours) == len(bare) and len(delivered(collector, 3)) == 3
    finally:
        respan_instrument.uninstrument()


def test_span_per_response(traced: Any, server: Any) -> None:
    _, exporter = traced
    with _connect(server) as conn:
        conn.response.create(**_ask("hi"))
        _until_done(conn)
    respan_instrument.flush(10)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == f"chat {MODEL}"]
    assert span.attributes["gen_ai.usage.input_tokens"] == 120
    assert span.attributes["gen_ai.response.time_to_first_chunk"] >= 0


def test_events_queued_before_the_connection_opened(instrumented: Any, server: Any) -> None:
    manager = _connect(server)
    if not hasattr(manager, "send"):
        pytest.skip("no send queue on this SDK's connection manager")
    manager.send({"type": "response.create", **_ask("queued before open")})
    with manager as conn:
        _until_done(conn)
    (log,) = delivered(instrumented, 1)
    assert log["input"] == [{"role": "user", "content": "queued before open"}]


def test_lanes_match_their_requests(instrumented: Any, server: Any) -> None:
    from openai.types.responses import responses_server_event

    if not hasattr(responses_server_event, "ResponseWsCreated"):  # (its events echo stream_id)
        pytest.skip("no stream_id lanes in this SDK")
    with _connect(server) as conn:
        conn.send({"type": "response.create", "stream_id": "lane-b", **_ask("for lane b")})
        conn.send({"type": "response.create", "stream_id": "lane-a", **_ask("for lane a")})
        done = [e for e in (_until_done(conn) + _until_done(conn)) if e.type == "response.completed"]
    assert [e.stream_id for e in done] == ["lane-b", "lane-a"]
    logs = {log["input"][0]["content"]: log for log in delivered(instrumented, 2)}
    assert set(logs) == {"for lane b", "for lane a"}
