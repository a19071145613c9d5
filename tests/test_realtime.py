"""Realtime sessions (SPEC §12): the real SDK's realtime client, sync and async, GA and beta,
against a loopback Realtime websocket server; each model response is one request log."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import RESPAN_KEY, delivered, sdk_has, start

import respan_instrument

pytest.importorskip("websockets")
openai = pytest.importorskip("openai")

from tests.realtime_server import (  # noqa: E402
    AUDIO_CHUNK,
    AUDIO_TRANSCRIPT,
    REPLY,
    TRANSCRIPT,
    RealtimeServer,
)
from tests.socket_servers import socket_client, surface  # noqa: E402

# openai 1.x opens its sync realtime socket with websockets' connect() outside a `with` block,
# which websockets >= 17.1 deprecates with a warning on the first send: the SDK's, not ours
pytestmark = pytest.mark.filterwarnings(
    "ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"
)


def _has(path: str) -> bool:
    return sdk_has(*path.split("."), "connect")


FLAVOURS = [
    pytest.param(p, marks=pytest.mark.skipif(not _has(p), reason=f"no {p} in this SDK"))
    for p in ("realtime", "beta.realtime")
]


@pytest.fixture(scope="module")
def server() -> Any:
    with RealtimeServer() as srv:
        yield srv


def _sync(server: Any, path: str) -> Any:
    return surface(socket_client(server), path)


def _text_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _audio_params(path: str) -> dict[str, Any]:
    return {"modalities": ["audio", "text"]} if path.startswith("beta") else {"output_modalities": ["audio"]}


def _until_done(conn: Any) -> list[Any]:
    events = []
    for event in conn:
        events.append(event)
        if event.type == "response.done":
            return events
    return events


def _dumps(events: list[Any]) -> list[str]:
    return [e.to_json() for e in events]


def test_text_response_is_one_log(instrumented: Any, server: Any) -> None:
    for path in [p for p in ("realtime", "beta.realtime") if _has(p)]:
        instrumented.clear()
        with _sync(server, path).connect(model="gpt-realtime") as conn:
            conn.conversation.item.create(item=_text_item("hi there"))
            conn.response.create()
            events = _until_done(conn)
        session_id = events[0].session.id
        (log,) = delivered(instrumented, 1)
        assert log["log_type"] == "chat" and log["model"] == "gpt-realtime"
        assert log["prompt_messages"] == [{"role": "user", "content": "hi there"}]
        assert log["completion_message"]["content"] == REPLY
        assert log["prompt_tokens"] == 120 and log["completion_tokens"] == 60
        assert log["thread_identifier"] == session_id
        assert log["metadata"]["realtime"] == "true"
        assert 0 <= log["ttft"] <= log["generation_time"]
        assert log["status"] == "success"


def _transcribe_with(path: str, model: str) -> dict[str, Any]:
    """A session.update event that turns on input-audio transcription, as each flavour spells it."""
    if path.startswith("beta"):
        return {"type": "session.update", "session": {"input_audio_transcription": {"model": model}}}
    return {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"transcription": {"model": model}}}},
    }


@pytest.mark.parametrize("path", FLAVOURS)
def test_audio_transcripts_and_cost_at_audio_rates(instrumented: Any, server: Any, path: str) -> None:
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.send(_transcribe_with(path, "gpt-4o-transcribe"))  # type: ignore[arg-type]
        conn.input_audio_buffer.append(audio=AUDIO_CHUNK)
        conn.input_audio_buffer.commit()
        conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "audio": AUDIO_CHUNK}],
            }
        )
        conn.response.create(response=_audio_params(path))  # type: ignore[arg-type]
        _until_done(conn)
    (log,) = [log for log in delivered(instrumented, 2) if log["log_type"] == "chat"]
    assert log["prompt_messages"] == [
        {"role": "user", "content": TRANSCRIPT},
        {"role": "user", "content": "[audio: no transcript]"},
    ]
    assert log["completion_message"]["content"] == AUDIO_TRANSCRIPT
    assert AUDIO_CHUNK[:64] not in json.dumps(log)
    # gpt-realtime by hand (genai-prices, USD per million): text in 4, cached 0.4, audio in 32,
    # cached audio 0.4, text out 16, audio out 64; the stub's usage splits 120 in / 60 out
    expected = (32 * 4 + 48 * 0.4 + 24 * 32 + 16 * 0.4 + 20 * 16 + 40 * 64) / 1e6
    assert log["cost"] == pytest.approx(expected)
    assert log["prompt_cache_hit_tokens"] == 64


@pytest.mark.parametrize("path", FLAVOURS)
def test_tool_call_and_conversation_so_far(instrumented: Any, server: Any, path: str) -> None:
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(item=_text_item("hello"))
        conn.response.create()
        _until_done(conn)
        conn.conversation.item.create(item=_text_item("call the tool"))
        conn.response.create()
        _until_done(conn)
    first, second = sorted(delivered(instrumented, 2), key=lambda log: log["start_time"])
    assert first["completion_message"]["content"] == REPLY
    assert second["prompt_messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": REPLY},
        {"role": "user", "content": "call the tool"},
    ]
    (call,) = second["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


@pytest.mark.parametrize("path", FLAVOURS)
def test_failed_response_logs_its_error(instrumented: Any, server: Any, path: str) -> None:
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(item=_text_item("please fail"))
        conn.response.create()
        events = _until_done(conn)
    assert events[-1].response.status == "failed"
    (log,) = delivered(instrumented, 1)
    assert log["status"] == "error"
    assert "The stub failed this response." in log["error_message"]


@pytest.mark.parametrize("path", FLAVOURS)
def test_server_hangup_is_cut_short(instrumented: Any, server: Any, path: str) -> None:
    from websockets.exceptions import ConnectionClosed

    with pytest.raises((ConnectionClosed, openai.OpenAIError)):  # noqa: PT012 - the SDK's own error
        with _sync(server, path).connect(model="gpt-realtime") as conn:
            conn.conversation.item.create(item=_text_item("hangup deltas=6"))
            conn.response.create()
            for _ in conn:
                pass
            raise ConnectionClosed(None, None)  # (a major whose iteration ends quietly on close)
    (log,) = delivered(instrumented, 1)
    assert log["metadata"]["stream_cut_short"] == "true"
    assert log["completion_message"]["content"] == "Hello from "


@pytest.mark.parametrize("path", FLAVOURS)
def test_app_close_and_drop_are_cut_short_once(instrumented: Any, server: Any, path: str) -> None:
    resource = _sync(server, path)
    with resource.connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(item=_text_item("wait"))
        conn.response.create()
        for event in conn:
            if event.type.endswith("text.delta") and event.delta == "from ":
                break
    dropped = resource.connect(model="gpt-realtime").enter()
    dropped.conversation.item.create(item=_text_item("wait"))
    dropped.response.create()
    for event in dropped:
        if event.type.endswith("text.delta"):
            break
    del dropped, event
    gc.collect()
    logs = delivered(instrumented, 2)
    assert all(log["metadata"]["stream_cut_short"] == "true" for log in logs)
    assert sorted(log["completion_message"]["content"] for log in logs) == ["Hello ", "Hello from "]


def test_attributes_thread_wins(instrumented: Any, server: Any) -> None:
    path = "realtime" if _has("realtime") else "beta.realtime"
    with respan_instrument.attributes(thread_identifier="my-thread", customer_identifier="c1"):
        conn_manager = _sync(server, path).connect(model="gpt-realtime")
        with conn_manager as conn:
            conn.conversation.item.create(item=_text_item("hi"))
            conn.response.create()
            _until_done(conn)
    (log,) = delivered(instrumented, 1)
    assert log["thread_identifier"] == "my-thread" and log["customer_identifier"] == "c1"


def _session_events(server: Any, path: str) -> list[str]:
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(item=_text_item("tool"))
        conn.response.create()
        events = _until_done(conn)
        conn.response.create(response=_audio_params(path))  # type: ignore[arg-type]
        events += _until_done(conn)
        conn.send({"type": "response.create"})
        data = conn.recv_bytes()
        events.append(conn.parse_event(data))
        events += _until_done(conn)
    skip = ("event_id", "id", "item_id", "response_id", "call_id", "previous_item_id")
    return [json.dumps(_scrub(json.loads(e), skip)) for e in _dumps(events)]


def _scrub(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: ("*" if k in keys else _scrub(v, keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, keys) for v in value]
    return value


@pytest.mark.parametrize("path", FLAVOURS)
def test_events_unchanged(collector: Any, server: Any, path: str) -> None:
    bare = _session_events(server, path)
    start(collector)
    try:
        assert _session_events(server, path) == bare
        assert len(delivered(collector, 3)) == 3
    finally:
        respan_instrument.uninstrument()


def _run(coro: Callable[[], Any]) -> Any:
    return asyncio.run(coro())


@pytest.mark.parametrize("path", FLAVOURS)
def test_async_text_and_audio(instrumented: Any, server: Any, path: str) -> None:
    async def session() -> None:
        async with surface(socket_client(server, True), path).connect(model="gpt-realtime") as conn:
            await conn.conversation.item.create(item=_text_item("hi"))
            await conn.response.create()
            async for event in conn:
                if event.type == "response.done":
                    break
            await conn.response.create(response=_audio_params(path))  # type: ignore[arg-type]
            async for event in conn:
                if event.type == "response.done":
                    break

    _run(session)
    first, second = sorted(delivered(instrumented, 2), key=lambda log: log["start_time"])
    assert first["completion_message"]["content"] == REPLY
    assert second["completion_message"]["content"] == AUDIO_TRANSCRIPT
    assert second["prompt_messages"][-1] == {"role": "assistant", "content": REPLY}
    assert AUDIO_CHUNK[:64] not in json.dumps(second)


def test_span_per_response(traced: Any, server: Any) -> None:
    _, exporter = traced
    path = "realtime" if _has("realtime") else "beta.realtime"
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(item=_text_item("hi"))
        conn.response.create()
        _until_done(conn)
    respan_instrument.flush(10)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-realtime"]
    assert span.attributes["gen_ai.usage.input_tokens"] == 120


def test_metrics_without_a_tracer(collector: Any, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    monkeypatch.setenv("RESPAN_API_KEY", RESPAN_KEY)
    monkeypatch.setenv("RESPAN_BASE_URL", collector.url + "/api")
    instrumentor = respan_instrument.RespanOpenAIInstrumentor()
    instrumentor.instrument(meter_provider=meters)
    try:
        path = "realtime" if _has("realtime") else "beta.realtime"
        with _sync(server, path).connect(model="gpt-realtime") as conn:
            conn.conversation.item.create(item=_text_item("hi"))
            conn.response.create()
            _until_done(conn)
            conn.conversation.item.create(item=_text_item("fail now"))
            conn.response.create()
            _until_done(conn)
        logs = sorted(delivered(collector, 2), key=lambda log: log["start_time"])
        assert [log["status"] for log in logs] == ["success", "error"]
        assert logs[0]["cost"] > 0 and logs[0]["prompt_tokens"] == 120
        data = reader.get_metrics_data()
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        assert "gen_ai.client.token.usage" in names and "gen_ai.client.operation.duration" in names
    finally:
        instrumentor.uninstrument()
        meters.shutdown()
