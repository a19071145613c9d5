"""Real recorded OpenAI answers (peers' public cassettes, see fixtures/recorded/SOURCES.md)
replayed through the real SDK via the loopback stub, and the defects they showed: an Azure
stream whose first chunk has an empty model, a stream failing before its first chunk, a legacy
completion naming a model no price source knows, images without a model, Responses'
`reasoning.effort`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from answers import genai_usd, recorded, sdk
from conftest import OPENAI_KEY, delivered

pytest.importorskip("genai_prices")


def test_recorded_web_search(instrumented, stub, client) -> None:
    answer = recorded("responses_web_search_gpt-4.1.json")
    stub.replay("responses", answer)
    result = client.responses.create(
        model="gpt-4.1",
        input="What was a positive news story from today?",
        tools=[{"type": "web_search_preview"}],
    )
    (log,) = delivered(instrumented)
    assert result.output[0].type == "web_search_call"
    tokens = genai_usd("gpt-4.1-2025-04-14", input_tokens=310, output_tokens=290)
    total = genai_usd("gpt-4.1-2025-04-14", input_tokens=310, output_tokens=290, web_searches=1)
    assert log["model"] == "gpt-4.1-2025-04-14"
    assert log["metadata"]["cost_breakdown"] == pytest.approx(
        {"tokens": tokens, "web_search": total - tokens}
    )
    assert log["cost"] == pytest.approx(total, rel=1e-9)


def test_recorded_file_search(instrumented, stub, client) -> None:
    answer = recorded("responses_file_search_gpt-4o.json")
    stub.replay("responses", answer)
    client.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": "Who made Logfire?"}],
        tools=[
            {
                "type": "file_search",
                "vector_store_ids": ["vs_67cd9e6afeb4819198cbffafab95d8ba"],
                "max_num_results": 1,
            }
        ],
    )
    (log,) = delivered(instrumented)
    usage = answer["usage"]
    counts = {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]}
    tokens = genai_usd(answer["model"], **counts)
    total = genai_usd(answer["model"], **counts, storage_searches=1)
    assert log["metadata"]["cost_breakdown"] == pytest.approx(
        {"tokens": tokens, "file_search": total - tokens}
    )
    assert log["cost"] == pytest.approx(total, rel=1e-9)


def test_recorded_reasoning_effort_is_logged(instrumented, stub, client) -> None:
    stub.replay("responses", recorded("responses_reasoning_gpt-5-nano.json"))
    client.responses.create(model="gpt-5-nano", input="Count r's in strawberry", reasoning={"effort": "low"})
    (log,) = delivered(instrumented)
    assert log["reasoning_effort"] == "low"
    assert log["reasoning_tokens"] == 320
    assert log["cost"] == pytest.approx(
        genai_usd("gpt-5-nano-2025-08-07", input_tokens=11, output_tokens=327)
    )


def azure_client(stub: Any, is_async: bool = False) -> Any:
    import openai

    kind = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
    return kind(api_key=OPENAI_KEY, azure_endpoint=stub.url, api_version="2024-02-01", max_retries=0)


@pytest.mark.parametrize("watched", [False, True], ids=["lean", "traced"])
def test_recorded_azure_stream_logs_the_response_model(collector, stub, sdk_spans, watched) -> None:
    """The first chunk (prompt filter results) has `model: ""`; every later one names the model."""
    from conftest import RESPAN_KEY

    import respan_instrument

    provider = sdk_spans[0] if watched else None
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", tracer_provider=provider
    )
    try:
        stub.replay("chat/completions", sse=recorded("azure_chat_stream.sse"))
        client = azure_client(stub)
        stream = client.chat.completions.create(
            model="openllmetry-testing",
            messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    assert text.startswith("Why did the Op")
    assert log["model"] == "gpt-35-turbo"
    assert log["completion_message"]["content"] == text


def test_recorded_async_azure_stream_logs_the_response_model(instrumented, stub) -> None:
    async def main() -> str:
        async with azure_client(stub, is_async=True) as client:
            stream = await client.chat.completions.create(
                model="openllmetry-testing", messages=[{"role": "user", "content": "joke"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    stub.replay("chat/completions", sse=recorded("azure_chat_stream.sse"))
    text = asyncio.run(main())
    (log,) = delivered(instrumented)
    assert text and log["model"] == "gpt-35-turbo"


@pytest.mark.parametrize("how", ["create", "with_streaming_response"])
def test_stream_failing_before_its_first_chunk_is_a_stream(instrumented, client, how) -> None:
    import openai

    with pytest.raises(openai.AuthenticationError):
        if how == "create":
            client.chat.completions.create(
                model="error-401", messages=[{"role": "user", "content": "x"}], stream=True
            )
        else:
            with client.chat.completions.with_streaming_response.create(
                model="error-401", messages=[{"role": "user", "content": "x"}], stream=True
            ) as raw:
                raw.parse()
    (log,) = delivered(instrumented)
    assert log["status_code"] == 401
    assert log["stream"] is True


def test_recorded_completion_stream_names_its_build(instrumented, stub, client) -> None:
    stub.replay("completions", sse=recorded("completion_stream_davinci.sse"))
    text = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="davinci-002", prompt="Tell me a joke about opentelemetry", stream=True
        )
    )
    (log,) = delivered(instrumented)
    assert log["model"] == "davinci:2023-07-21-v2"
    assert log["output"] == text


def test_completion_naming_an_unpriced_build_is_billed_as_the_requested_model(
    instrumented, stub, client
) -> None:
    """The recorded answer's usage and id, as the model build the recorded stream names."""
    from openai.types import Completion

    answer = recorded("completion_davinci-002.json")
    stub.replay("completions", sdk(Completion, {**answer, "model": "davinci:2023-07-21-v2"}))
    client.completions.create(model="davinci-002", prompt="Tell me a joke about opentelemetry")
    (log,) = delivered(instrumented)
    assert log["model"] == "davinci:2023-07-21-v2"
    assert log["cost"] == pytest.approx(genai_usd("davinci-002", input_tokens=8, output_tokens=16), rel=1e-9)


def test_recorded_dalle_image(instrumented, stub, client) -> None:
    stub.replay("images/generations", recorded("images_dall-e-2.json"))
    result = client.images.generate(prompt="a white siamese cat", model="dall-e-2", n=1, size="256x256")
    (log,) = delivered(instrumented)
    assert result.data[0].url.startswith("https://")
    assert log["cost"] == pytest.approx(0.016, rel=1e-12)  # OpenAI's published price per image
    assert "metadata" not in log  # one line


def test_recorded_chat_with_cached_tokens(instrumented, stub, client) -> None:
    answer = recorded("chat_cached_gpt-4o-mini.json")
    stub.replay("chat/completions", answer)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "a long prompt"}]
    )
    (log,) = delivered(instrumented)
    expected = genai_usd(
        "gpt-4o-mini-2024-07-18", input_tokens=1149, cache_read_tokens=1024, output_tokens=353
    )
    assert log["prompt_cache_hit_tokens"] == 1024
    assert log["cost"] == pytest.approx(expected, rel=1e-9)


def test_recorded_embeddings(instrumented, stub, client) -> None:
    stub.replay("embeddings", recorded("embeddings_ada-002.json"))
    result = client.embeddings.create(
        model="text-embedding-ada-002", input="Tell me a joke about opentelemetry"
    )
    (log,) = delivered(instrumented)
    assert len(result.data[0].embedding) == 1536
    assert log["model"] == "text-embedding-ada-002-v2"
    assert log["cost"] == pytest.approx(genai_usd("text-embedding-ada-002", input_tokens=8), rel=1e-9)


def test_recorded_responses_stream(instrumented, stub, client) -> None:
    stub.replay("responses", sse=recorded("responses_stream_gpt-4o.sse"))
    with client.responses.create(
        model="gpt-4o", input=[{"role": "user", "content": "あたし"}], stream=True
    ) as stream:
        events = [event.type for event in stream]
    (log,) = delivered(instrumented)
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert log["stream"] is True and log["model"] == "gpt-4o-2024-08-06"
    assert log["cost"] == pytest.approx(
        genai_usd("gpt-4o-2024-08-06", input_tokens=10, output_tokens=41), rel=1e-9
    )


def test_recorded_transcription(instrumented, stub, client) -> None:
    stub.replay("audio/transcriptions", recorded("transcription_gpt-4o-transcribe.json"))
    result = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", bytes(1024), "audio/wav")
    )
    (log,) = delivered(instrumented)
    assert result.text == "あたし"
    expected = genai_usd("gpt-4o-transcribe", input_tokens=1, input_audio_tokens=1, output_tokens=5)
    assert log["cost"] == pytest.approx(expected, rel=1e-9)
