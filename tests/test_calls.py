"""Non-streamed calls of every operation, sync and async, land as complete request logs."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from conftest import OPENAI_KEY, RESPAN_KEY, delivered, start

import respan_instrument

GPT4O_MINI_IN, GPT4O_MINI_OUT, GPT4O_MINI_CACHED = 0.15e-6, 0.60e-6, 0.075e-6
HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def mini_cost(usage: Any) -> float:
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    return (
        (usage.prompt_tokens - cached) * GPT4O_MINI_IN
        + cached * GPT4O_MINI_CACHED
        + usage.completion_tokens * GPT4O_MINI_OUT
    )


def assert_common(log: dict[str, Any]) -> None:
    assert HEX32.match(log["trace_unique_id"]) and log["trace_unique_id"] != "0" * 32
    assert HEX16.match(log["span_unique_id"])
    assert ISO.match(log["start_time"]) and ISO.match(log["timestamp"])
    assert log["start_time"] <= log["timestamp"]
    assert 0 < log["generation_time"] < 10


def test_chat_sync_log_fields(instrumented, client) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=50, seed=7, stop=["\n"]
    )
    messages.append({"role": "user", "content": "appended after the call"})
    (log,) = delivered(instrumented)
    assert_common(log)
    assert log["log_type"] == "chat"
    assert log["model"] == response.model == "gpt-4o-mini-2024-07-18"
    assert log["prompt_messages"] == messages[:2]  # snapshot at call time
    assert log["completion_message"] == {"role": "assistant", "content": response.choices[0].message.content}
    assert log["prompt_tokens"] == response.usage.prompt_tokens
    assert log["completion_tokens"] == response.usage.completion_tokens
    assert log["usage"]["total_tokens"] == response.usage.total_tokens
    assert log["cost"] == pytest.approx(mini_cost(response.usage), rel=1e-9)
    assert log["temperature"] == 0.2 and log["max_tokens"] == 50 and log["seed"] == 7
    assert log["stop"] == ["\n"]
    for absent in ("top_p", "n", "tools", "frequency_penalty", "max_completion_tokens"):
        assert absent not in log, absent  # never record parameters the user did not send
    assert log["status"] == "success" and log["status_code"] == 200
    assert log["stream"] is False
    assert log["span_name"] == "chat gpt-4o-mini"
    assert "span_parent_id" not in log


def test_chat_async(instrumented, aclient) -> None:
    async def main() -> Any:
        async with aclient() as c:
            return await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "async hi"}]
            )

    response = asyncio.run(main())
    (log,) = delivered(instrumented)
    assert_common(log)
    assert log["completion_message"]["content"] == response.choices[0].message.content
    assert log["prompt_tokens"] == response.usage.prompt_tokens
    assert log["cost"] == pytest.approx(mini_cost(response.usage))


def test_tool_calls_and_n(instrumented, client) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather?"}],
        tools=tools,
        tool_choice="auto",
    )
    two = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], n=2
    )
    first, second = delivered(instrumented, 2)
    call = response.choices[0].message.tool_calls[0]
    assert first["tools"] == tools and first["tool_choice"] == "auto"
    assert first["tool_calls"] == [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": call.function.arguments},
        }
    ]
    assert first["completion_message"]["tool_calls"] == first["tool_calls"]
    assert second["n"] == 2
    assert [m["content"] for m in second["completion_messages"]] == [c.message.content for c in two.choices]


def test_responses_create_and_parse(instrumented, client) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    response = client.responses.create(model="gpt-4o-mini", input="Say hi", instructions="Be kind")
    parsed = client.responses.parse(model="gpt-4o-mini", input="A city", text_format=City)
    assert isinstance(parsed.output_parsed, City)
    first, second = delivered(instrumented, 2)
    assert first["log_type"] == "response"
    assert first["input"] == "Say hi"
    assert first["output"][0]["content"][0]["text"] == response.output_text
    assert first["prompt_tokens"] == response.usage.input_tokens
    assert first["completion_tokens"] == response.usage.output_tokens
    expected = response.usage.input_tokens * GPT4O_MINI_IN + response.usage.output_tokens * GPT4O_MINI_OUT
    assert first["cost"] == pytest.approx(expected)
    assert second["log_type"] == "response" and second["status"] == "success"


def test_chat_parse_is_one_log(instrumented, client) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: str

    result = client.chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}], response_format=Answer
    )
    assert isinstance(result.choices[0].message.parsed, Answer)
    (log,) = delivered(instrumented)
    assert log["response_format"]["type"] == "json_schema"


def test_embeddings_never_log_vectors(instrumented, client) -> None:
    response = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    (log,) = delivered(instrumented)
    assert log["log_type"] == "embedding"
    assert log["input"] == ["alpha", "beta"]
    assert "output" not in log
    assert log["prompt_tokens"] == response.usage.prompt_tokens
    assert log["cost"] == pytest.approx(response.usage.prompt_tokens * 0.02e-6)
    raw = json.dumps(log)
    assert str(response.data[0].embedding[0]) not in raw


def test_legacy_completions(instrumented, client) -> None:
    response = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon", max_tokens=5)
    (log,) = delivered(instrumented)
    assert log["log_type"] == "completion"
    assert log["input"] == "Once upon"
    assert log["output"] == response.choices[0].text
    assert log["prompt_tokens"] == response.usage.prompt_tokens and "cost" in log


def test_with_raw_response(instrumented, client) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "raw"}]
    )
    assert raw.headers.get("x-request-id")
    completion = raw.parse()
    (log,) = delivered(instrumented)
    assert log["completion_message"]["content"] == completion.choices[0].message.content
    assert log["prompt_tokens"] == completion.usage.prompt_tokens


def test_client_created_before_instrument_and_cached_raw_wrapper(collector, stub) -> None:
    import openai

    early = openai.OpenAI(api_key=OPENAI_KEY, base_url=stub.url + "/v1", max_retries=0)
    cached = early.chat.completions.with_raw_response  # the SDK caches this per client
    start(collector)
    try:
        cached.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}]).parse()
        early.embeddings.create(model="text-embedding-3-small", input="b")
        logs = delivered(collector, 2)
        assert [entry["log_type"] for entry in logs] == ["chat", "embedding"]
    finally:
        respan_instrument.uninstrument()


def test_azure_client(instrumented, stub) -> None:
    import openai

    azure = openai.AzureOpenAI(
        azure_endpoint=stub.url, api_version="2024-06-01", api_key=OPENAI_KEY, max_retries=0
    )
    response = azure.chat.completions.create(
        model="my-deployment", messages=[{"role": "user", "content": "az"}]
    )
    (log,) = delivered(instrumented)
    assert log["model"] == response.model
    assert log["completion_message"]["content"] == response.choices[0].message.content


@pytest.mark.parametrize(
    ("model", "status", "exc_name"),
    [
        ("error-400", 400, "BadRequestError"),
        ("error-429", 429, "RateLimitError"),
        ("error-500", 500, "InternalServerError"),
    ],
)
def test_api_errors_reach_user_unchanged(instrumented, client, model, status, exc_name) -> None:
    import openai

    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert type(info.value).__name__ == exc_name
    (log,) = delivered(instrumented)
    assert log["status"] == "error" and log["status_code"] == status
    assert log["error_message"] == info.value.message
    assert log["model"] == model and "cost" not in log


def test_connection_error(instrumented) -> None:
    import socket

    import openai

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    dead = openai.OpenAI(api_key=OPENAI_KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        dead.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    (log,) = delivered(instrumented)
    assert log["status"] == "error" and "status_code" not in log
    assert log["error_message"].startswith("APIConnectionError")


def test_timeout(instrumented, client) -> None:
    import openai

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.05).chat.completions.create(
            model="slow-500", messages=[{"role": "user", "content": "x"}]
        )
    (log,) = delivered(instrumented)
    assert log["status"] == "error" and log["error_message"].startswith("APITimeoutError")


def test_capture_content_off_keeps_metrics(collector, stub, client) -> None:
    start(collector, capture_content=False)
    try:
        response = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "secret prompt"}], temperature=1.0
        )
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    for field in (
        "prompt_messages",
        "completion_message",
        "completion_messages",
        "input",
        "output",
        "tool_calls",
    ):
        assert field not in log
    assert "secret prompt" not in json.dumps(log)
    assert log["prompt_tokens"] == response.usage.prompt_tokens and log["cost"] > 0
    assert log["temperature"] == 1.0


def test_no_secrets_anywhere(instrumented, client, stub) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    import openai

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="error-401", messages=[{"role": "user", "content": "x"}])
    delivered(instrumented, 2)
    for _path, headers, body, _status in instrumented.requests:
        assert OPENAI_KEY.encode() not in body
        assert RESPAN_KEY.encode() not in body
        assert b"Authorization" not in body and b"authorization" not in body
        assert headers.get("Authorization", headers.get("authorization")) == f"Bearer {RESPAN_KEY}"


def test_user_tracer_provider(collector, client, traced) -> None:
    provider, exported = traced
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handler") as parent:
        response = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    (log,) = delivered(collector)
    spans = {s.name: s for s in exported.get_finished_spans()}
    span = spans["chat gpt-4o-mini"]
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.kind.name == "CLIENT"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == response.model
    assert attrs["gen_ai.response.id"] == response.id
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == response.usage.completion_tokens
    assert attrs["gen_ai.usage.cost"] == pytest.approx(log["cost"])
    assert log["trace_unique_id"] == f"{span.context.trace_id:032x}"
    assert log["span_unique_id"] == f"{span.context.span_id:016x}"
    assert log["span_parent_id"] == f"{parent.get_span_context().span_id:016x}"


def test_error_span_status(collector, client, traced) -> None:
    import openai

    _, exported = traced
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="error-404", messages=[{"role": "user", "content": "x"}])
    delivered(collector)
    (span,) = exported.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.events[0].name == "exception"


def test_our_failure_reading_a_response_still_ends_the_span_and_sends_the_log(
    collector, client, traced, monkeypatch, caplog
) -> None:
    """Outside strict mode, a bug of ours after the SDK returned is logged once; the user's
    result is untouched, the span ends, and the log still goes out (without the usage)."""
    from respan_instrument.endpoints.base import Endpoint

    monkeypatch.delenv("RESPAN_INSTRUMENT_STRICT")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("outcome bug")

    monkeypatch.setattr(Endpoint, "outcome", broken)
    done = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content
    _provider, exporter = traced
    (span,) = exporter.get_finished_spans()
    assert span.end_time is not None
    (log,) = delivered(collector, 1)
    assert (
        log["status"] == "success" and log["completion_message"]["content"] == done.choices[0].message.content
    )
    assert len([r for r in caplog.records if "finishing a call" in r.getMessage()]) == 1
