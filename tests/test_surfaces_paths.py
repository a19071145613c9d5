"""The newer paid surfaces on every way an app reaches them (SPEC §10): with_raw_response,
with_streaming_response, async, and every way a stream ends. Each model call is one log, once."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest
from conftest import delivered
from test_surfaces import MP3, PNG, assert_no_media, has

import respan_instrument


def _streams_images() -> bool:
    return has(openai.types, "ImageGenStreamEvent")


def _streams_transcripts() -> bool:
    return has(openai.types, "audio", "TranscriptionStreamEvent")


def _image_stream(client: Any) -> Any:
    return client.images.generate(model="gpt-image-1", prompt="A boat", stream=True, partial_images=2)


def _transcript_stream(client: Any) -> Any:
    return client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("talk.mp3", MP3, "audio/mpeg"), stream=True
    )


# ---- with_raw_response / with_streaming_response ----------------------------------------------
def test_raw_response_surfaces(instrumented, client) -> None:
    raw = client.images.with_raw_response.generate(model="gpt-image-1", prompt="A fox")
    image = raw.parse()
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("a.mp3", MP3, "audio/mpeg")
    )
    raw.parse()
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input="Hello there")
    assert raw.content
    raw = client.moderations.with_raw_response.create(input="hello")
    raw.parse()
    logs = delivered(instrumented, 4)
    by_type = {log["log_type"]: log for log in logs}
    assert set(by_type) == {"generation", "transcription", "speech", "guardrail"}
    assert by_type["generation"]["prompt_tokens"] == image.usage.input_tokens
    assert by_type["speech"]["cost"] == pytest.approx(len("Hello there") * 15e-6)
    assert by_type["guardrail"]["cost"] == 0
    for log in logs:
        assert_no_media(log)


def test_streaming_response_speech_logged_when_read(instrumented, client) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1-hd", voice="alloy", input="Read me"
    ) as response:
        audio = b"".join(response.iter_bytes())
    assert audio
    (log,) = delivered(instrumented)
    assert log["log_type"] == "speech" and log["model"] == "tts-1-hd"
    assert log["cost"] == pytest.approx(len("Read me") * 30e-6)
    assert_no_media(log)


def test_streaming_response_image_stream(instrumented, client) -> None:
    if not _streams_images():
        pytest.skip("this openai has no streamed image generation")
    with client.images.with_streaming_response.generate(
        model="gpt-image-1", prompt="A boat", stream=True, partial_images=1
    ) as response:
        events = list(response.parse())
    assert events
    (log,) = delivered(instrumented)
    assert log["stream"] is True and log["cost"] > 0
    assert_no_media(log)


# ---- stream exit paths ----------------------------------------------------------------------
@pytest.mark.parametrize("surface", ["image", "transcript"])
def test_stream_closed_early_is_one_log(instrumented, client, surface) -> None:
    if not (_streams_images() if surface == "image" else _streams_transcripts()):
        pytest.skip("this openai has no such stream")
    stream = _image_stream(client) if surface == "image" else _transcript_stream(client)
    for _event in stream:
        break
    stream.close()
    (log,) = delivered(instrumented)
    assert log["stream"] is True
    assert_no_media(log)


@pytest.mark.parametrize("surface", ["image", "transcript"])
def test_stream_abandoned_unclosed_is_one_log(instrumented, client, surface) -> None:
    if not (_streams_images() if surface == "image" else _streams_transcripts()):
        pytest.skip("this openai has no such stream")
    stream = _image_stream(client) if surface == "image" else _transcript_stream(client)
    next(iter(stream))
    del stream
    gc.collect()
    (log,) = delivered(instrumented)
    assert log["stream"] is True


def test_exception_in_the_apps_loop_is_one_log(instrumented, client) -> None:
    if not _streams_transcripts():
        pytest.skip("this openai has no streamed transcription")

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        with _transcript_stream(client) as stream:
            for _event in stream:
                raise Stop
    (log,) = delivered(instrumented)
    assert log["stream"] is True


def test_streamed_transcription_text_and_usage(instrumented, client) -> None:
    if not _streams_transcripts():
        pytest.skip("this openai has no streamed transcription")
    events = list(_transcript_stream(client))
    done = events[-1]
    (log,) = delivered(instrumented)
    assert log["output"] == done.text
    assert log["prompt_tokens"] == done.usage.input_tokens
    assert log["completion_tokens"] == done.usage.output_tokens
    assert log["cost"] > 0 and "ttft" in log


def test_async_streams(instrumented, aclient) -> None:
    if not (_streams_images() and _streams_transcripts()):
        pytest.skip("this openai has no streamed images or transcripts")

    async def main() -> None:
        async with aclient() as c:
            images = await c.images.generate(model="gpt-image-1", prompt="A fox", stream=True)
            async for _event in images:
                pass
            transcript = await c.audio.transcriptions.create(
                model="gpt-4o-transcribe", file=("a.mp3", MP3, "audio/mpeg"), stream=True
            )
            async for _event in transcript:
                break
            await transcript.close()

    asyncio.run(main())
    logs = delivered(instrumented, 2)
    assert sorted(log["log_type"] for log in logs) == ["generation", "transcription"]
    assert all(log["stream"] is True for log in logs)


# ---- errors ---------------------------------------------------------------------------------
def test_failed_image_call_is_an_error_log_without_cost(instrumented, client) -> None:
    with pytest.raises(openai.RateLimitError):
        client.images.generate(model="error-429", prompt="x")
    with pytest.raises(openai.InternalServerError):
        client.audio.transcriptions.create(model="error-500", file=("a.mp3", MP3, "audio/mpeg"))
    logs = delivered(instrumented, 2)
    assert sorted(log["status_code"] for log in logs) == [429, 500]
    for log in logs:
        assert log["error_message"]
        assert "cost" not in log or not log["cost"]
        assert_no_media(log)


# ---- threads and spans ----------------------------------------------------------------------
def test_conversation_is_the_thread(instrumented, client) -> None:
    client.responses.create(model="gpt-4o-mini", input="Hi", conversation="conv_abc123")
    (log,) = delivered(instrumented)
    assert log["thread_identifier"] == "conv_abc123"


def test_multipart_span_has_no_bytes(traced, client) -> None:
    _provider, exporter = traced
    client.images.edit(model="gpt-image-1", image=("cat.png", PNG, "image/png"), prompt="Add a hat")
    (span,) = exporter.get_finished_spans()
    text = json.dumps({key: str(value) for key, value in span.attributes.items()})
    assert "\\u0000" not in text and "PNG" not in text


def test_background_retrieved_twice_logged_once(instrumented, client) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="Slow", background=True)
    for _ in range(10):
        if client.responses.retrieve(created.id).status == "completed":
            break
    client.responses.retrieve(created.id)
    client.responses.retrieve(created.id)
    (log,) = delivered(instrumented)
    assert log["model"].startswith("gpt-4o-mini")
    assert respan_instrument.flush() and len(instrumented.logs) == 1
