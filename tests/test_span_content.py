"""Spans that reach the application's own TracerProvider carry the conversation (SPEC §11):
`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions` in the GenAI
conventions' message schema, truncated as a log's content, and only with content capture on."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from conftest import RESPAN_KEY, delivered

import respan_instrument

CONTENT = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


def _attributes(exporter: Any) -> dict[str, Any]:
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes or {})


def test_chat_span_carries_the_conversation(traced, client) -> None:
    _, exporter = traced
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
    )
    a = _attributes(exporter)
    inputs = json.loads(a["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[1]["parts"] == [{"type": "text", "content": "Hello there"}]
    outputs = json.loads(a["gen_ai.output.messages"])
    assert outputs[0]["role"] == "assistant"
    assert outputs[0]["parts"][0]["content"] == reply.choices[0].message.content
    assert outputs[0]["finish_reason"] == reply.choices[0].finish_reason
    # the indexed legacy names are for OTLP export only
    assert not [k for k in a if k.startswith(("gen_ai.prompt.", "gen_ai.completion."))]


def test_streamed_responses_span_carries_instructions_and_output(traced, client) -> None:
    _, exporter = traced
    stream = client.responses.create(
        model="gpt-4o-mini", instructions="Answer in French.", input="Hi", stream=True
    )
    text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    a = _attributes(exporter)
    assert json.loads(a["gen_ai.system_instructions"])[0]["content"] == "Answer in French."
    assert json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Hi"
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == text


def test_failed_call_span_carries_its_input(traced, client) -> None:
    _, exporter = traced
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="error-429", messages=[{"role": "user", "content": "Hi"}])
    a = _attributes(exporter)
    assert json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Hi"
    assert "gen_ai.output.messages" not in a


def test_span_content_is_truncated_like_the_log(collector, sdk_spans, client) -> None:
    provider, exporter = sdk_spans
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", tracer_provider=provider
    )
    image = "data:image/png;base64," + "A" * 50_000
    try:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": image}},
                    ],
                }
            ],
        )
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    a = _attributes(exporter)
    assert "AAAAAAAAAA" not in a["gen_ai.input.messages"]
    assert "inline image/png omitted" in a["gen_ai.input.messages"]
    assert "AAAAAAAAAA" not in json.dumps(log)


def test_no_content_when_capture_is_off(collector, sdk_spans, client) -> None:
    provider, exporter = sdk_spans
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", tracer_provider=provider, capture_content=False
    )
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "secret"}])
    finally:
        respan_instrument.uninstrument()
    a = _attributes(exporter)
    assert not [k for k in a if k in CONTENT]
    assert "secret" not in json.dumps({k: str(v) for k, v in a.items()})
    assert a["gen_ai.usage.input_tokens"] > 0
