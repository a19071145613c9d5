"""The newest HTTP surfaces (SPEC §13): beta Responses (`?beta=true`), `responses.compact`,
`decisions.create`, and background responses that end otherwise than `completed`. Each is one
log, sync and async, plain, with_raw_response and with_streaming_response, and absent without
harm on SDKs that lack it. The real SDK talks to the loopback stub."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from conftest import OPENAI_KEY, delivered, sdk_has, start

import respan_instrument

MODEL = "gpt-4o-mini"
INPUT = [{"role": "user", "content": "Summarise our chat so far"}]
QUESTIONS = [
    {"type": "predicate", "name": "polite", "question": "Is the input polite?"},
    {"type": "score", "name": "tone", "question": "How warm is it, 1 to 5?"},
]


def _needs(*path: str) -> Any:
    return pytest.mark.skipif(
        not sdk_has(*path),
        reason=f"no {'.'.join(path)} in openai {openai.__version__}",
    )


# ---- beta Responses: a query string never hides a known path ----------------------------------
@_needs("beta", "responses", "create")
def test_beta_responses_create_plain_raw_and_streamed(instrumented, client, stub) -> None:
    beta = client.beta.responses
    plain = beta.create(model=MODEL, input="Hello")
    raw = beta.with_raw_response.create(model=MODEL, input="Hello").parse()
    events = list(beta.create(model=MODEL, input="Hello", stream=True))
    with beta.with_streaming_response.create(model=MODEL, input="Hello") as response:
        read = response.parse()
    assert stub.requests[-1].query == {"beta": "true"}
    logs = delivered(instrumented, 4)
    assert [log["log_type"] for log in logs] == ["response"] * 4
    assert [log["stream"] for log in logs] == [False, False, True, False]
    for log, answer in zip(logs, (plain, raw, events[-1].response, read), strict=True):
        text = answer.output[0].content[0].text
        assert log["input"] == "Hello" and log["output"][0]["content"][0]["text"] == text
        assert log["prompt_tokens"] == answer.usage.input_tokens and log["cost"] > 0


@_needs("beta", "responses", "compact")
def test_beta_background_retrieve_cancel_and_compact(instrumented, client) -> None:
    beta = client.beta.responses
    done = beta.create(model=MODEL, input="Quick", background=True, extra_headers={"x-stub-polls": "0"})
    assert beta.retrieve(done.id).status == "completed"
    queued = beta.create(model=MODEL, input="Long", background=True, extra_headers={"x-stub-polls": "50"})
    assert beta.cancel(queued.id).status == "cancelled"
    compacted = beta.compact(model=MODEL, input=INPUT)
    first, second, third = delivered(instrumented, 3)
    assert first["input"] == "Quick" and first["status"] == "success" and "metadata" not in first
    assert second["input"] == "Long" and second["metadata"] == {"response_status": "cancelled"}
    assert third["input"] == INPUT and third["prompt_tokens"] == compacted.usage.input_tokens


@_needs("beta", "responses", "create")
def test_async_beta_responses(instrumented, aclient) -> None:
    async def main() -> None:
        async with aclient() as c:
            await c.beta.responses.create(model=MODEL, input="Hi")
            stream = await c.beta.responses.create(model=MODEL, input="Hi", stream=True)
            async for _ in stream:
                pass

    asyncio.run(main())
    logs = delivered(instrumented, 2)
    assert [log["stream"] for log in logs] == [False, True]


# ---- responses.compact -------------------------------------------------------------------------
@_needs("responses", "compact")
def test_compact_is_a_response_log(instrumented, client, stub) -> None:
    compacted = client.responses.compact(model=MODEL, input=INPUT, instructions="Be brief")
    assert type(compacted).__name__ == "CompactedResponse"
    raw = client.responses.with_raw_response.compact(model=MODEL, input=INPUT).parse()
    with client.responses.with_streaming_response.compact(model=MODEL, input=INPUT) as response:
        streamed = response.parse()
    logs = delivered(instrumented, 3)
    for log, answer in zip(logs, (compacted, raw, streamed), strict=True):
        assert log["log_type"] == "response" and log["status"] == "success" and log["stream"] is False
        assert log["model"] == MODEL  # a compacted response names no model: the request's
        assert log["input"] == INPUT
        assert len(log["output"]) == len(answer.output) == 2
        assert log["output"][0]["role"] == "user" and log["output"][0]["content"] == INPUT[0]["content"]
        assert log["output"][-1] == answer.output[-1].to_dict() and log["output"][-1]["type"] == "compaction"
        assert log["prompt_tokens"] == answer.usage.input_tokens
        assert log["completion_tokens"] == answer.usage.output_tokens
        assert log["usage"]["total_tokens"] == answer.usage.total_tokens and log["cost"] > 0
    assert logs[0]["instructions"] == "Be brief"


@_needs("responses", "compact")
def test_async_compact_and_its_errors(instrumented, aclient) -> None:
    async def main() -> None:
        async with aclient() as c:
            await c.responses.compact(model=MODEL, input=INPUT)
            with pytest.raises(openai.RateLimitError):
                await c.responses.compact(model="error-429", input=INPUT)

    asyncio.run(main())
    ok, failed = delivered(instrumented, 2)
    assert ok["status"] == "success" and ok["input"] == INPUT
    assert failed["status"] == "error" and failed["status_code"] == 429 and "cost" not in failed


# ---- decisions ---------------------------------------------------------------------------------
@_needs("decisions", "create")
def test_decisions_logged_as_a_responses_call(collector, stub) -> None:
    stub.usage = {"cache_write_tokens": 7, "cached_tokens": 3}
    start(collector)
    try:
        client = openai.OpenAI(api_key=OPENAI_KEY, base_url=stub.url + "/v1", max_retries=0)
        decision = client.decisions.create(model="gpt-6-luna", input="Thanks so much!", questions=QUESTIONS)
        raw = client.decisions.with_raw_response.create(model="gpt-6-luna", input="x", questions=QUESTIONS)
        assert type(raw.parse()).__name__ == "Decision"
        (log, _) = delivered(collector, 2)
    finally:
        stub.usage = {}
        respan_instrument.uninstrument()
    assert log["log_type"] == "response" and log["model"] == "gpt-6-luna" and log["status"] == "success"
    assert log["input"] == "Thanks so much!"
    assert [entry["question"] for entry in log["output"]] == QUESTIONS
    assert [entry["answer"] for entry in log["output"]] == [a.to_dict() for a in decision.answers]
    assert log["prompt_tokens"] == decision.usage.input_tokens
    assert log["completion_tokens"] == decision.usage.output_tokens
    assert log["usage"]["input_tokens_details"] == {"cache_write_tokens": 7, "cached_tokens": 3}
    assert log["prompt_cache_hit_tokens"] == 3


@_needs("decisions", "create")
def test_async_decisions(instrumented, aclient) -> None:
    async def main() -> Any:
        async with aclient() as c:
            async with c.decisions.with_streaming_response.create(
                model="gpt-6-luna", input="Hi", questions=QUESTIONS
            ) as response:
                return await response.parse()

    decision = asyncio.run(main())
    (log,) = delivered(instrumented)
    assert log["log_type"] == "response" and log["prompt_tokens"] == decision.usage.input_tokens


# ---- background responses that end otherwise than completed -----------------------------------
@pytest.mark.parametrize(
    ("model", "status"), [("incomplete-bg", "incomplete"), ("fail-bg", "failed"), (MODEL, "cancelled")]
)
def test_background_response_ending_short_says_so(instrumented, client, model, status) -> None:
    polls = "50" if status == "cancelled" else "0"
    created = client.responses.create(
        model=model, input="An essay", background=True, extra_headers={"x-stub-polls": polls}
    )
    if status == "cancelled":
        client.responses.cancel(created.id)
    assert client.responses.retrieve(created.id).status == status
    (log,) = delivered(instrumented)
    # (the stub's model names that script the ending have no price: the bill names that line)
    assert log["metadata"]["response_status"] == status
    assert set(log["metadata"]) <= {"response_status", "cost_unpriced"}
    assert log["input"] == "An essay"
    if status == "failed":
        assert log["status"] == "error" and "failed (injected by the stub)" in log["error_message"]
    else:
        assert log["status"] == "success" and "error_message" not in log


def test_async_background_cancelled(instrumented, aclient) -> None:
    async def main() -> None:
        async with aclient() as c:
            created = await c.responses.create(
                model=MODEL, input="Long", background=True, extra_headers={"x-stub-polls": "50"}
            )
            await c.responses.cancel(created.id)

    asyncio.run(main())
    (log,) = delivered(instrumented)
    assert log["metadata"] == {"response_status": "cancelled"}


# ---- audio.speech.create(stream_format="sse") ---------------------------------------------------
SPEECH = {
    "model": "gpt-4o-mini-tts",
    "voice": "alloy",
    "input": "Hi there, how are you",
    "stream_format": "sse",
}
SLOW = {"x-stub-chunk-delay-ms": "40"}  # five audio deltas, 40 ms apart
# openai 1.x has no `_send_request` seam: there a whole SSE answer's first delta cannot be timed
TIMED = hasattr(openai._base_client.SyncAPIClient, "_send_request")


def _assert_speech_stream(log: dict[str, Any], read_by_app: bool = False, timed: bool = TIMED) -> None:
    assert log["log_type"] == "speech" and log["stream"] is True and log["status"] == "success"
    if timed or not read_by_app:  # the usage of its `speech.audio.done`, where the bytes passed us
        assert log["prompt_tokens"] > 0 and log["cost"] > 0
    if timed:  # the first delta, well before the last (four more, 40 ms apart)
        assert 0 < log["ttft"] < log["generation_time"] - 0.1
    else:
        assert "ttft" not in log


def test_speech_sse_is_a_stream_timed_to_its_first_delta(instrumented, client) -> None:
    bare = client.audio.speech.create(**SPEECH, extra_headers=SLOW)
    raw = client.audio.speech.with_raw_response.create(**SPEECH, extra_headers=SLOW)
    assert type(raw.http_response).__name__ == "Response" and raw.parse().content
    with client.audio.speech.with_streaming_response.create(**SPEECH, extra_headers=SLOW) as response:
        lines = list(response.iter_lines())
    assert bare.content.count(b"speech.audio.delta") == 5
    assert sum("speech.audio.delta" in line for line in lines) == 5
    plain, raw_log, read = delivered(instrumented, 3)
    _assert_speech_stream(plain)
    _assert_speech_stream(raw_log)
    _assert_speech_stream(read, read_by_app=True)


def test_speech_without_sse_is_no_stream(instrumented, client) -> None:
    client.audio.speech.create(model="tts-1", voice="alloy", input="Hello")
    (log,) = delivered(instrumented)
    assert log["stream"] is False and "ttft" not in log


def test_async_speech_sse(instrumented, aclient) -> None:
    async def main() -> bytes:
        async with aclient() as c:
            answer = await c.audio.speech.create(**SPEECH, extra_headers=SLOW)
            async with c.audio.speech.with_streaming_response.create(
                **SPEECH, extra_headers=SLOW
            ) as response:
                async for _ in response.iter_bytes():
                    pass
            return answer.content

    assert b"speech.audio.done" in asyncio.run(main())
    plain, read = delivered(instrumented, 2)
    _assert_speech_stream(plain)
    _assert_speech_stream(read, read_by_app=True)


def test_speech_sse_failing_mid_body_raises_as_the_sdk_would(instrumented, client) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.speech.create(**SPEECH, extra_headers={"x-stub-status": "500"})
    assert caught.value.status_code == 500
    (log,) = delivered(instrumented)
    assert log["status"] == "error" and log["stream"] is True
