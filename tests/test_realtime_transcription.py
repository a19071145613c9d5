"""Input-audio transcription in realtime sessions (SPEC §13): each completed transcription is a
`transcription` log with its transcript and usage, priced at the transcription model's rate, in
a conversation session and in a transcription-only one, sync and async, GA and beta."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from answers import genai_usd
from conftest import delivered

from tests.test_realtime import FLAVOURS, _has, _sync, _text_item, _transcribe_with

pytest.importorskip("websockets")
openai = pytest.importorskip("openai")

from tests.realtime_server import (  # noqa: E402
    AUDIO_CHUNK,
    TRANSCRIBED_SECONDS,
    TRANSCRIPT,
    RealtimeServer,
)
from tests.socket_servers import socket_client, surface  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"
)


@pytest.fixture(scope="module")
def server() -> Any:
    with RealtimeServer() as srv:
        yield srv


@pytest.mark.parametrize("path", FLAVOURS)
def test_transcription_in_a_session_is_its_own_log(instrumented: Any, server: Any, path: str) -> None:
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.send(_transcribe_with(path, "gpt-4o-transcribe"))  # type: ignore[arg-type]
        conn.input_audio_buffer.append(audio=AUDIO_CHUNK)
        conn.input_audio_buffer.commit()
        session_id = None
        for event in conn:
            if event.type == "session.created":
                session_id = event.session.id
            if event.type == "conversation.item.input_audio_transcription.completed":
                break
    (log,) = delivered(instrumented, 1)
    assert log["log_type"] == "transcription" and log["model"] == "gpt-4o-transcribe"
    assert log["output"] == TRANSCRIPT and log["status"] == "success"
    assert log["usage"]["type"] == "tokens" and log["prompt_tokens"] == 50 and log["completion_tokens"] == 10
    assert log["cost"] == pytest.approx(
        genai_usd("gpt-4o-transcribe", input_tokens=50, input_audio_tokens=50, output_tokens=10)
    )
    assert log["thread_identifier"] == session_id and log["metadata"]["realtime"] == "true"
    assert AUDIO_CHUNK[:64] not in str(log)


@pytest.mark.parametrize(("model", "per_minute"), [("whisper-1", 0.006), ("gpt-realtime-whisper", 0.017)])
def test_duration_usage_is_priced_per_audio_time(
    instrumented: Any, server: Any, model: str, per_minute: float
) -> None:
    path = "realtime" if _has("realtime") else "beta.realtime"
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.send(_transcribe_with(path, model))  # type: ignore[arg-type]
        conn.input_audio_buffer.append(audio=AUDIO_CHUNK)
        conn.input_audio_buffer.commit()
        for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                break
    (log,) = delivered(instrumented, 1)
    assert log["model"] == model and log["usage"] == {"type": "duration", "seconds": TRANSCRIBED_SECONDS}
    assert "prompt_tokens" not in log
    assert log["cost"] == pytest.approx(per_minute * TRANSCRIBED_SECONDS / 60)


def test_unknown_transcription_model_has_no_cost(instrumented: Any, server: Any) -> None:
    path = "realtime" if _has("realtime") else "beta.realtime"
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.send(_transcribe_with(path, "whisper-from-nowhere"))  # type: ignore[arg-type]
        conn.input_audio_buffer.commit()
        for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                break
    (log,) = delivered(instrumented, 1)
    assert "cost" not in log and log["output"] == TRANSCRIPT


@pytest.mark.parametrize("path", FLAVOURS)
def test_transcription_only_session_async(instrumented: Any, server: Any, path: str) -> None:
    if path.startswith("beta"):
        update = {
            "type": "transcription_session.update",
            "session": {"input_audio_transcription": {"model": "whisper-1"}},
        }
    else:
        update = {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            },
        }

    async def session() -> None:
        async with surface(socket_client(server, True), path).connect(model="gpt-realtime") as conn:
            await conn.send(update)
            for _ in range(2):
                await conn.input_audio_buffer.append(audio=AUDIO_CHUNK)
                await conn.input_audio_buffer.commit()
                async for event in conn:
                    if event.type == "conversation.item.input_audio_transcription.completed":
                        break

    asyncio.run(session())
    logs = delivered(instrumented, 2)
    assert {log["log_type"] for log in logs} == {"transcription"}
    assert [log["model"] for log in logs] == ["whisper-1", "whisper-1"]
    assert all(log["cost"] == pytest.approx(0.006 * TRANSCRIBED_SECONDS / 60) for log in logs)


def test_conversation_keeps_the_transcript(instrumented: Any, server: Any) -> None:
    path = "realtime" if _has("realtime") else "beta.realtime"
    with _sync(server, path).connect(model="gpt-realtime") as conn:
        conn.send(_transcribe_with(path, "whisper-1"))  # type: ignore[arg-type]
        conn.input_audio_buffer.commit()
        conn.conversation.item.create(item=_text_item("and text"))
        conn.response.create()
        for event in conn:
            if event.type == "response.done":
                break
    logs = delivered(instrumented, 2)
    (chat,) = [log for log in logs if log["log_type"] == "chat"]
    assert chat["prompt_messages"][0] == {"role": "user", "content": TRANSCRIPT}
