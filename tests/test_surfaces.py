"""Every paid OpenAI surface is one priced request log (SPEC §10): images, audio, speech,
moderations, background responses, Batch output files. Calls that do no model work pass
through with no log. The real SDK talks to the loopback stub; we assert on what the collector got."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import pytest
from conftest import delivered

import respan_instrument

PNG = b"\x89PNG\r\n\x1a\n" + bytes(2048)
MP3 = bytes(40 * 1024)
BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{200,}")


def assert_no_media(log: dict[str, Any]) -> None:
    """No base64 and no audio or image bytes anywhere in a log."""
    text = json.dumps(log)
    assert not BASE64_RUN.search(text), text[:300]
    assert "b64_json" not in text


def has(sdk: Any, *path: str) -> bool:
    for name in path:
        sdk = getattr(sdk, name, None)
        if sdk is None:
            return False
    return True


# ---- images ---------------------------------------------------------------------------------
def test_image_generation_gpt_image(instrumented, client) -> None:
    result = client.images.generate(model="gpt-image-1", prompt="A lighthouse at dawn", size="1024x1024")
    (log,) = delivered(instrumented)
    assert log["log_type"] == "generation" and log["model"] == "gpt-image-1"
    assert log["input"] == "A lighthouse at dawn"
    assert log["size"] == "1024x1024"
    assert len(log["output"]) == len(result.data)
    assert all(str(item).startswith("[image: image/png") for item in log["output"])
    usage = result.usage
    image_in = usage.input_tokens_details.image_tokens
    expected = (usage.input_tokens - image_in) * 5e-6 + image_in * 10e-6 + usage.output_tokens * 40e-6
    assert log["prompt_tokens"] == usage.input_tokens and log["completion_tokens"] == usage.output_tokens
    assert log["cost"] == pytest.approx(expected, rel=1e-9)
    assert_no_media(log)


@pytest.mark.parametrize(
    ("model", "size", "quality", "n", "price"),
    [
        ("dall-e-3", "1024x1792", "hd", 1, 0.12),
        ("dall-e-3", "1024x1024", None, 1, 0.04),
        ("dall-e-2", "512x512", None, 2, 0.018),
    ],
)
def test_dalle_priced_per_image(instrumented, client, model, size, quality, n, price) -> None:
    extra = {"quality": quality} if quality else {}
    result = client.images.generate(model=model, prompt="A red kite", size=size, n=n, **extra)
    (log,) = delivered(instrumented)
    assert len(result.data) == n
    assert log["cost"] == pytest.approx(price * n, rel=1e-9)
    assert "prompt_tokens" not in log


def test_unpriced_image_model_has_no_cost(instrumented, client) -> None:
    client.images.generate(model="dall-e-9", prompt="A red kite", size="1024x1024")
    (log,) = delivered(instrumented)
    assert "cost" not in log


def test_image_edit_multipart_shows_placeholders(instrumented, client) -> None:
    client.images.edit(
        model="gpt-image-1", image=("cat.png", PNG, "image/png"), mask=io.BytesIO(PNG), prompt="Add a hat"
    )
    (log,) = delivered(instrumented)
    assert log["log_type"] == "generation"
    assert log["input"][0] == "Add a hat"
    assert "[image: image/png, 2 KB, cat.png]" in log["input"]
    assert any(item.startswith("[image: ") for item in log["input"][1:])
    assert_no_media(log)


# openai 3.x marks this endpoint deprecated with a DeprecationWarning of its own
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_image_variation(instrumented, client) -> None:
    client.images.create_variation(model="dall-e-2", image=("cat.png", PNG, "image/png"), size="256x256")
    (log,) = delivered(instrumented)
    assert log["input"] == ["[image: image/png, 2 KB, cat.png]"]
    assert log["cost"] == pytest.approx(0.016)


def test_streamed_image_generation_is_one_log(instrumented, client) -> None:
    import openai

    if not has(openai.types, "ImageGenStreamEvent"):
        pytest.skip("this openai has no streamed image generation")
    events = list(client.images.generate(model="gpt-image-1", prompt="A boat", stream=True, partial_images=2))
    (log,) = delivered(instrumented)
    assert log["stream"] is True and "ttft" in log
    assert log["output"] and all(item.startswith("[image: ") for item in log["output"])
    assert log["cost"] > 0 and events
    assert_no_media(log)


# ---- audio ----------------------------------------------------------------------------------
def test_transcription_tokens_priced(instrumented, client) -> None:
    result = client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("talk.mp3", MP3, "audio/mpeg")
    )
    (log,) = delivered(instrumented)
    assert log["log_type"] == "transcription"
    assert log["input"] == {"file": "[audio: audio/mpeg, 40 KB, talk.mp3]"}
    assert log["output"] == result.text
    usage = result.usage
    audio = usage.input_token_details.audio_tokens
    expected = audio * 3e-6 + (usage.input_tokens - audio) * 1.25e-6 + usage.output_tokens * 5e-6
    assert log["cost"] == pytest.approx(expected, rel=1e-9)
    assert_no_media(log)


def test_whisper_priced_per_minute(instrumented, client) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("talk.mp3", MP3, "audio/mpeg"),
        response_format="verbose_json",
        prompt="Names: Ada",
    )
    (log,) = delivered(instrumented)
    assert log["input"]["prompt"] == "Names: Ada"
    assert log["output"] == result.text
    assert log["cost"] == pytest.approx(result.duration / 60 * 0.006, rel=1e-9)


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_transcription_text_formats(instrumented, client, response_format) -> None:
    text = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("talk.mp3", MP3, "audio/mpeg"), response_format=response_format
    )
    (log,) = delivered(instrumented)
    assert isinstance(text, str) and log["output"] == text


def test_streamed_transcription(instrumented, client) -> None:
    events = list(
        client.audio.transcriptions.create(
            model="gpt-4o-mini-transcribe", file=("talk.mp3", MP3, "audio/mpeg"), stream=True
        )
    )
    done = [e for e in events if e.type == "transcript.text.done"]
    (log,) = delivered(instrumented)
    assert log["stream"] is True and "ttft" in log
    assert done and log["output"] == done[-1].text
    assert log["cost"] > 0


# openai 3.x marks this endpoint deprecated with a DeprecationWarning of its own
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation(instrumented, client) -> None:
    result = client.audio.translations.create(model="whisper-1", file=("talk.mp3", MP3, "audio/mpeg"))
    (log,) = delivered(instrumented)
    assert log["log_type"] == "transcription" and log["output"] == result.text


def test_speech_binary(instrumented, client) -> None:
    text = "Hello from the speech test."
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    size = len(audio.content)
    (log,) = delivered(instrumented)
    assert log["log_type"] == "speech" and log["input"] == text and log["voice"] == "alloy"
    assert log["output"].startswith("[audio: audio/mpeg, ")
    assert log["cost"] == pytest.approx(len(text) / 1e6 * 15, rel=1e-9)
    assert size > 0
    assert_no_media(log)


def test_speech_streamed_to_file(instrumented, client, tmp_path) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1-hd", voice="nova", input="Hi"
    ) as answer:
        answer.stream_to_file(tmp_path / "out.mp3")
    (log,) = delivered(instrumented)
    assert log["output"].startswith("[audio: audio/mpeg")
    assert log["cost"] == pytest.approx(2 / 1e6 * 30, rel=1e-9)


def test_speech_sse_priced_by_tokens(instrumented, client) -> None:
    audio = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="alloy", input="Hi there", stream_format="sse"
    )
    assert audio.content
    (log,) = delivered(instrumented)
    assert log["prompt_tokens"] > 0 and log["cost"] > 0
    assert_no_media(log)


# ---- moderations ----------------------------------------------------------------------------
def test_moderation_is_a_free_guardrail(instrumented, client) -> None:
    result = client.moderations.create(
        model="omni-moderation-latest", input=["I will kill the process", "hello"]
    )
    (log,) = delivered(instrumented)
    assert log["log_type"] == "guardrail" and log["cost"] == 0
    assert [item["flagged"] for item in log["output"]] == [r.flagged for r in result.results]
    assert log["output"][0]["flagged"] and log["output"][0]["categories"]


# ---- background responses -------------------------------------------------------------------
def test_background_response_logged_once_when_finished(instrumented, client) -> None:
    created = client.responses.create(
        model="gpt-4o-mini", input="Write a haiku", background=True, extra_headers={"x-stub-polls": "2"}
    )
    assert created.status in ("queued", "in_progress")
    statuses = []
    for _ in range(6):
        statuses.append(client.responses.retrieve(created.id).status)
    assert statuses[-1] == "completed"
    (log,) = delivered(instrumented)
    assert log["log_type"] == "response" and log["status"] == "success"
    assert log["input"] == "Write a haiku"  # created in this process: its request is known
    assert log["output"] and log["cost"] > 0


def test_cancelled_background_response(instrumented, client) -> None:
    created = client.responses.create(
        model="gpt-4o-mini", input="A long essay", background=True, extra_headers={"x-stub-polls": "50"}
    )
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    client.responses.retrieve(created.id)
    (log,) = delivered(instrumented)
    assert log["log_type"] == "response"


def test_background_stream_resumed(instrumented, client) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="Count to three", background=True)
    events = list(client.responses.retrieve(created.id, stream=True, starting_after=0))
    assert events and events[-1].type == "response.completed"
    (log,) = delivered(instrumented)
    assert log["stream"] is True and log["output"]


def test_response_chain_is_one_thread(instrumented, client) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="Hi")
    second = client.responses.create(model="gpt-4o-mini", input="And?", previous_response_id=first.id)
    client.responses.create(model="gpt-4o-mini", input="More", previous_response_id=second.id)
    logs = delivered(instrumented, 3)
    assert [log.get("thread_identifier") for log in logs] == [None, first.id, first.id]


def test_attributes_thread_wins(instrumented, client) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="Hi")
    with respan_instrument.attributes(thread_identifier="mine"):
        client.responses.create(model="gpt-4o-mini", input="And?", previous_response_id=first.id)
    logs = delivered(instrumented, 2)
    assert logs[1]["thread_identifier"] == "mine"


# ---- Batch API ------------------------------------------------------------------------------
def _batch_file(client: Any) -> Any:
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
        for i in range(3)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = client.files.create(file=("batch.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return client.batches.retrieve(batch.id)


def test_batch_output_is_one_log_per_line_at_batch_rate(instrumented, client) -> None:
    batch = _batch_file(client)
    content = client.files.content(batch.output_file_id)
    results = [json.loads(line) for line in content.text.splitlines() if line.strip()]
    logs = delivered(instrumented, 3)
    assert sorted(log["metadata"]["batch_custom_id"] for log in logs) == ["req-0", "req-1", "req-2"]
    for log, result in zip(
        sorted(logs, key=lambda g: g["metadata"]["batch_custom_id"]), results, strict=True
    ):
        usage = result["response"]["body"]["usage"]
        assert log["log_type"] == "chat"
        full = usage["prompt_tokens"] * 0.15e-6 + usage["completion_tokens"] * 0.60e-6
        assert log["cost"] == pytest.approx(full / 2, rel=1e-9)
    client.files.content(batch.output_file_id)  # read again: no new logs
    assert respan_instrument.flush() and len(instrumented.logs) == 3


def test_calls_without_model_work_pass_through(instrumented, client) -> None:
    client.models.list()
    uploaded = client.files.create(file=("notes.jsonl", b'{"a": 1}\n'), purpose="batch")
    client.files.retrieve(uploaded.id)
    assert client.files.content(uploaded.id).content == b'{"a": 1}\n'
    assert respan_instrument.flush()
    assert instrumented.logs == []


# ---- async ----------------------------------------------------------------------------------
def test_async_surfaces(instrumented, aclient) -> None:
    async def main() -> None:
        async with aclient() as c:
            await c.images.generate(model="gpt-image-1", prompt="A fox")
            await c.audio.transcriptions.create(model="whisper-1", file=("a.mp3", MP3, "audio/mpeg"))
            await c.audio.speech.create(model="tts-1", voice="alloy", input="Hey")
            await c.moderations.create(input="hello")

    asyncio.run(main())
    logs = delivered(instrumented, 4)
    assert sorted(log["log_type"] for log in logs) == ["generation", "guardrail", "speech", "transcription"]
    for log in logs:
        assert_no_media(log)


def test_traced_image_span(traced, client) -> None:
    _provider, exporter = traced
    client.images.generate(model="gpt-image-1", prompt="A fox")
    (span,) = exporter.get_finished_spans()
    assert span.name == "image_generation gpt-image-1"
    assert span.attributes["gen_ai.usage.cost"] > 0
    assert not any(BASE64_RUN.search(str(value)) for value in span.attributes.values())
