"""The OpenAI stub answers every paid surface (images, audio, moderations, background responses,
files and batches) so the real SDK parses each answer into its typed models; no instrumentation."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import openai
import pytest

from respan_instrument.local.openai_stub import OpenAIStub

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
AUDIO = b"ID3" + bytes(97)
# the newest SDK marks variations and translations deprecated; the API still serves (and bills) them
sdk_deprecated = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


def _needs(obj: Any, *names: str) -> None:
    """Skip where an older SDK major lacks a method (the stub's wire format is the same for all)."""
    for name in names:
        if not hasattr(obj, name):
            pytest.skip(f"this openai SDK has no {name}")
        obj = getattr(obj, name)


# -- images -----------------------------------------------------------------------------


def test_image_generation_gpt_image_has_usage(plain_client: openai.OpenAI) -> None:
    result = plain_client.images.generate(model="gpt-image-1", prompt="a red fox in snow", n=2, quality="low")
    assert result.data is not None and len(result.data) == 2
    assert base64.b64decode(result.data[0].b64_json or "").startswith(b"\x89PNG")
    assert result.usage is not None
    assert result.usage.input_tokens_details.text_tokens == 5
    assert result.usage.output_tokens == 2 * 272
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert (result.size, result.quality, result.output_format) == ("1024x1024", "low", "png")


def test_image_generation_dalle_has_no_usage(plain_client: openai.OpenAI) -> None:
    result = plain_client.images.generate(model="dall-e-3", prompt="a fox", response_format="url")
    assert result.usage is None and result.data is not None
    assert result.data[0].url and result.data[0].revised_prompt == "a fox"


def test_image_generation_stream(plain_client: openai.OpenAI) -> None:
    try:
        stream: Any = plain_client.images.generate(
            model="gpt-image-1", prompt="a fox", stream=True, partial_images=2
        )
    except TypeError:
        pytest.skip("this openai SDK cannot stream images")
    events = list(stream)
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert events[1].partial_image_index == 1
    assert events[-1].usage.total_tokens > 0


def test_image_edit_multipart_recorded_without_bytes(
    plain_client: openai.OpenAI, plain_stub: OpenAIStub
) -> None:
    result = plain_client.images.edit(
        model="gpt-image-1",
        image=("fox.png", PNG, "image/png"),
        mask=("m.png", PNG[:20], "image/png"),
        prompt="add a hat",
        size="1024x1024",
    )
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens > 0
    request = plain_stub.requests[-1]
    assert request.path == "/v1/images/edits"
    assert request.body["prompt"] == "add a hat" and request.body["size"] == "1024x1024"
    assert request.files["image"] == ("fox.png", "image/png", len(PNG))
    assert request.files["mask"] == ("m.png", "image/png", 20)


def test_image_edit_stream(plain_client: openai.OpenAI) -> None:
    try:
        stream: Any = plain_client.images.edit(
            model="gpt-image-1",
            image=("fox.png", PNG, "image/png"),
            prompt="hat",
            stream=True,
            partial_images=1,
        )
    except TypeError:
        pytest.skip("this openai SDK cannot stream image edits")
    assert [e.type for e in stream] == ["image_edit.partial_image", "image_edit.completed"]


@sdk_deprecated
def test_image_variation(plain_client: openai.OpenAI, plain_stub: OpenAIStub) -> None:
    result = plain_client.images.create_variation(image=("fox.png", PNG, "image/png"), model="dall-e-2", n=3)
    assert result.data is not None and len(result.data) == 3 and result.usage is None
    assert plain_stub.requests[-1].body == {"model": "dall-e-2", "n": "3"}


# -- audio ------------------------------------------------------------------------------


def test_transcription_token_usage(plain_client: openai.OpenAI) -> None:
    result = plain_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.mp3", AUDIO), prompt="two words"
    )
    assert result.text == "Hello from the stub."
    usage: Any = result.usage
    assert usage.type == "tokens" and usage.input_token_details.text_tokens == 2
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_transcription_whisper_duration_usage(plain_client: openai.OpenAI, plain_stub: OpenAIStub) -> None:
    result = plain_client.audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO, "audio/wav"))
    usage: Any = result.usage
    assert usage.type == "duration" and usage.seconds == 2.5
    assert plain_stub.requests[-1].files["file"] == ("a.wav", "audio/wav", len(AUDIO))


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_transcription_plain_formats(plain_client: openai.OpenAI, fmt: Any) -> None:
    result: Any = plain_client.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", AUDIO), response_format=fmt
    )
    assert isinstance(result, str) and "Hello from the stub." in result


def test_transcription_verbose_json(plain_client: openai.OpenAI, plain_stub: OpenAIStub) -> None:
    result = plain_client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.mp3", AUDIO),
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
    )
    assert result.language == "english" and result.duration == 2.5
    assert result.segments is not None and result.segments[0].text == result.text
    assert plain_stub.requests[-1].body["timestamp_granularities[]"] == "segment,word"


def test_transcription_stream(plain_client: openai.OpenAI) -> None:
    stream = plain_client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("a.mp3", AUDIO), stream=True
    )
    events = list(stream)
    assert {e.type for e in events[:-1]} == {"transcript.text.delta"}
    done: Any = events[-1]
    assert done.type == "transcript.text.done" and done.text == "".join(e.delta for e in events[:-1])
    assert done.usage.total_tokens > 0


@sdk_deprecated
def test_translation_json_and_verbose(plain_client: openai.OpenAI) -> None:
    assert plain_client.audio.translations.create(model="whisper-1", file=("a.mp3", AUDIO)).text
    verbose = plain_client.audio.translations.create(
        model="whisper-1", file=("a.mp3", AUDIO), response_format="verbose_json"
    )
    assert verbose.duration == 2.5 and verbose.segments
    text: Any = plain_client.audio.translations.create(
        model="whisper-1", file=("a.mp3", AUDIO), response_format="text"
    )
    assert isinstance(text, str)


def test_speech_binary(plain_client: openai.OpenAI) -> None:
    audio = plain_client.audio.speech.create(
        model="gpt-4o-mini-tts", input="Hi there", voice="alloy", extra_headers={"x-stub-audio-bytes": "300"}
    )
    assert len(audio.content) == 300 and audio.response.headers["content-type"] == "audio/mpeg"
    wav = plain_client.audio.speech.create(model="tts-1", input="Hi", voice="alloy", response_format="wav")
    assert wav.response.headers["content-type"] == "audio/wav" and wav.content.startswith(b"ID3")


def test_speech_sse(plain_client: openai.OpenAI) -> None:
    with plain_client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        input="Hi there",
        voice="alloy",
        stream_format="sse",
        extra_headers={"x-stub-audio-bytes": "100", "x-stub-chunks": "4"},
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * 4 + ["speech.audio.done"]
    assert sum(len(base64.b64decode(e["audio"])) for e in events[:-1]) == 100
    assert events[-1]["usage"]["input_tokens"] == 2


# -- moderations ------------------------------------------------------------------------


def test_moderation_flags_deterministically(plain_client: openai.OpenAI) -> None:
    result = plain_client.moderations.create(
        model="omni-moderation-latest", input=["a nice day", "I will kill it"]
    )
    calm, violent = result.results
    assert not calm.flagged and violent.flagged and violent.categories.violence
    assert violent.category_scores.violence > 0.5 and not violent.categories.hate
    assert violent.category_applied_input_types.violence == ["text"]
    assert result.model.startswith("omni-moderation-")


# -- Responses background mode -----------------------------------------------------------


def test_background_poll_then_completed(plain_client: openai.OpenAI) -> None:
    queued = plain_client.responses.create(
        model="gpt-4o-mini", input="Hello", background=True, extra_headers={"x-stub-polls": "2"}
    )
    assert queued.status == "queued" and queued.background and not queued.output
    statuses = [plain_client.responses.retrieve(queued.id).status for _ in range(3)]
    assert statuses == ["in_progress", "in_progress", "completed"]
    final = plain_client.responses.retrieve(queued.id)
    assert final.output_text == "Echo: Hello" and final.usage is not None


def test_background_resume_stream(plain_client: openai.OpenAI) -> None:
    queued = plain_client.responses.create(model="gpt-4o-mini", input="Hello", background=True)
    events = list(plain_client.responses.retrieve(queued.id, stream=True, starting_after=3))
    assert events[0].sequence_number == 4 and events[-1].type == "response.completed"


def test_background_stream_from_created(plain_client: openai.OpenAI) -> None:
    events = list(
        plain_client.responses.create(model="gpt-4o-mini", input="Hi", background=True, stream=True)
    )
    assert events[0].type == "response.created" and events[0].response.status == "queued"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"


def test_background_cancel_and_failure(plain_client: openai.OpenAI) -> None:
    queued = plain_client.responses.create(model="gpt-4o-mini", input="Hello", background=True)
    assert plain_client.responses.cancel(queued.id).status == "cancelled"
    assert plain_client.responses.retrieve(queued.id).status == "cancelled"
    failing = plain_client.responses.create(
        model="fail-bg", input="Hello", background=True, extra_headers={"x-stub-polls": "0"}
    )
    failed = plain_client.responses.retrieve(failing.id)
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    with pytest.raises(openai.NotFoundError):
        plain_client.responses.retrieve("resp_missing")


def test_conversation_and_previous_response_echoed(plain_client: openai.OpenAI) -> None:
    first = plain_client.responses.create(
        model="gpt-4o-mini", input="Hello", previous_response_id="resp_prev"
    )
    assert first.previous_response_id == "resp_prev"
    _needs(first, "conversation")
    second = plain_client.responses.create(model="gpt-4o-mini", input="Hello", conversation="conv_123")
    assert second.conversation is not None and second.conversation.id == "conv_123"


# -- files and batches -------------------------------------------------------------------


def test_batch_round_trip(plain_client: openai.OpenAI) -> None:
    lines = [
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        },
        {
            "custom_id": "b",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": "Hi"},
        },
        {
            "custom_id": "c",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-4o-mini", "input": "Hi"},
        },
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = plain_client.files.create(file=("batch.jsonl", data), purpose="batch")
    assert uploaded.bytes == len(data) and plain_client.files.retrieve(uploaded.id).filename == "batch.jsonl"
    assert plain_client.files.content(uploaded.id).content == data
    batch = plain_client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert (
        batch.status == "completed" and batch.request_counts is not None and batch.request_counts.total == 3
    )
    assert plain_client.batches.retrieve(batch.id).output_file_id == batch.output_file_id
    output = [
        json.loads(line) for line in plain_client.files.content(batch.output_file_id or "").text.splitlines()
    ]
    assert [o["custom_id"] for o in output] == ["a", "b", "c"]
    bodies = [o["response"]["body"] for o in output]
    assert [b["object"] for b in bodies] == ["chat.completion", "list", "response"]
    assert all(
        o["response"]["status_code"] == 200 and b["usage"] for o, b in zip(output, bodies, strict=True)
    )


# -- errors and Azure ---------------------------------------------------------------------


def test_error_injection_on_new_routes(plain_client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        plain_client.images.generate(model="error-429", prompt="x")
    with pytest.raises(openai.InternalServerError):
        plain_client.audio.transcriptions.create(model="error-500", file=("a.mp3", AUDIO))
    with pytest.raises(openai.BadRequestError):
        plain_client.moderations.create(input="x", extra_headers={"x-stub-status": "400"})
    queued = plain_client.responses.create(model="gpt-4o-mini", input="Hi", background=True)
    with pytest.raises(openai.InternalServerError):
        plain_client.responses.retrieve(queued.id, extra_headers={"x-stub-status": "503"})


def test_azure_paths(plain_stub: OpenAIStub) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=plain_stub.url, api_key="k", api_version="2025-04-01-preview", max_retries=0
    )
    try:
        image = client.images.generate(model="gpt-image-1", prompt="a fox")
        assert image.usage is not None
        text = client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", AUDIO))
        assert text.text
        assert plain_stub.requests[-1].path == "/openai/deployments/whisper-1/audio/transcriptions"
    finally:
        client.close()


def test_async_surfaces(plain_stub: OpenAIStub) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=plain_stub.base_url, api_key="sk-test", max_retries=0)
        try:
            image = await client.images.generate(model="gpt-image-1", prompt="a fox")
            assert image.usage is not None
            speech = await client.audio.speech.create(model="tts-1", input="Hi", voice="alloy")
            assert len(speech.content) == 256
            queued = await client.responses.create(model="gpt-4o-mini", input="Hi", background=True)
            assert (await client.responses.retrieve(queued.id)).status == "in_progress"
            assert (await client.responses.retrieve(queued.id)).status == "completed"
        finally:
            await client.close()

    asyncio.run(main())
