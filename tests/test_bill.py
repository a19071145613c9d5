"""Every line of the bill (SPEC §14): built-in tool fees, cache writes, audio time, a second
model's tokens, a breakdown and the lines that cannot be priced. The real SDK gets SDK-shaped
answers from the loopback stub; costs are checked against genai-prices computed here."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from answers import genai_usd, message, response, response_usage, sdk, sse
from conftest import RESPAN_KEY, delivered, start

import respan_instrument

pytest.importorskip("genai_prices")

WEB = {"type": "web_search_call", "status": "completed"}
IMAGE_TOOL_USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
    "output_tokens": 1056,
    "output_tokens_details": {"image_tokens": 1056, "text_tokens": 0},
    "total_tokens": 1106,
}


def tools_answer(model: str = "gpt-5.4-mini", **fields: Any) -> dict[str, Any]:
    """The issue's worked example: 3k tokens in, 400 out, 4 billed web searches (a fifth call
    opened a page), 1 file search, one image made by the tool, one container."""
    output = [{**WEB, "id": f"ws_{i}", "action": {"type": "search", "query": f"q{i}"}} for i in range(4)] + [
        {**WEB, "id": "ws_open", "action": {"type": "open_page", "url": "https://example.com"}},
        {"id": "fs_1", "type": "file_search_call", "status": "completed", "queries": ["q"]},
        {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": "aGk="},
        {
            "id": "ci_1",
            "type": "code_interpreter_call",
            "status": "completed",
            "code": "print(1)",
            "container_id": "cntr_abc",
            "outputs": [],
        },
        message("done"),
    ]
    tool_usage = {"web_search": {"num_requests": 4}, "image_gen": IMAGE_TOOL_USAGE}
    return response(model, output, response_usage(3000, 400), tool_usage=tool_usage, **fields)


TOOLS = [
    {"type": "web_search"},
    {"type": "file_search", "vector_store_ids": ["vs_1"]},
    {"type": "image_generation", "model": "gpt-image-1.5"},
    {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}},
]


def expected_tools_bill() -> dict[str, float]:
    tokens = genai_usd("gpt-5.4-mini", input_tokens=3000, output_tokens=400)
    with_searches = genai_usd("gpt-5.4-mini", input_tokens=3000, output_tokens=400, web_searches=4)
    with_files = genai_usd("gpt-5.4-mini", input_tokens=3000, output_tokens=400, storage_searches=1)
    image = genai_usd("gpt-image-1.5", input_tokens=50, output_tokens=1056, output_image_tokens=1056)
    return {
        "tokens": tokens,
        "web_search": with_searches - tokens,
        "file_search": with_files - tokens,
        "image_generation": image,
    }


def check_tools_log(log: dict[str, Any]) -> None:
    expected = expected_tools_bill()
    assert expected["web_search"] == pytest.approx(4 * 0.010)  # genai-prices: $10 per 1k calls
    assert log["metadata"]["cost_breakdown"] == pytest.approx(expected, rel=1e-9)
    assert log["cost"] == pytest.approx(sum(expected.values()), rel=1e-9)
    assert log["metadata"]["cost_unpriced"] == {
        "containers": {
            "model": "gpt-5.4-mini",
            "unit": "container",
            "quantity": 1,
            "container_ids": ["cntr_abc"],
            "billed_by": "container time",
            "memory_limit": "4g",
        }
    }
    assert log["cost"] > 15 * expected["tokens"]  # what was logged before: the tokens alone


def test_responses_tools_are_billed(instrumented, stub, client) -> None:
    stub.replay("responses", tools_answer())
    client.responses.create(model="gpt-5.4-mini", input="research this", tools=TOOLS)
    (log,) = delivered(instrumented)
    check_tools_log(log)


def test_streamed_responses_tools_are_billed(instrumented, stub, client) -> None:
    final = tools_answer()
    created = {**final, "status": "in_progress", "output": [], "usage": None, "tool_usage": None}
    events = [
        {"type": "response.created", "sequence_number": 0, "response": created},
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "msg_1",
            "output_index": 8,
            "content_index": 0,
            "delta": "done",
            "logprobs": [],
        },
        {"type": "response.completed", "sequence_number": 2, "response": final},
    ]
    stub.replay("responses", sse=sse(events))
    with client.responses.create(model="gpt-5.4-mini", input="x", tools=TOOLS, stream=True) as stream:
        assert [event.type for event in stream][-1] == "response.completed"
    (log,) = delivered(instrumented)
    assert log["stream"] is True
    check_tools_log(log)


def test_background_response_tools_are_billed(instrumented, stub, client) -> None:
    """A background response the create call already sees finished is logged with its bill."""
    stub.replay("responses", tools_answer(background=True))
    client.responses.create(model="gpt-5.4-mini", input="x", tools=TOOLS, background=True)
    (log,) = delivered(instrumented)
    check_tools_log(log)


def test_async_responses_tools_are_billed(instrumented, stub, aclient) -> None:
    async def main() -> None:
        async with aclient() as c:
            await c.responses.create(model="gpt-5.4-mini", input="x", tools=TOOLS)

    stub.replay("responses", tools_answer())
    asyncio.run(main())
    (log,) = delivered(instrumented)
    check_tools_log(log)


def test_web_searches_counted_from_items_when_the_answer_has_no_tool_usage(
    instrumented, stub, client
) -> None:
    from openai.types.responses.response_function_web_search import ActionFind

    find = ActionFind.model_fields["type"].annotation.__args__[0]  # "find" in openai 1.x
    output = [
        {**WEB, "id": "ws_1", "action": {"type": "search", "query": "a"}},
        {**WEB, "id": "ws_2", "action": {"type": "search", "query": "b"}},
        {**WEB, "id": "ws_3", "action": {"type": "open_page", "url": "https://a.example"}},
        {**WEB, "id": "ws_4", "action": {"type": find, "url": "https://a.example", "pattern": "x"}},
        {**WEB, "id": "ws_5", "status": "failed", "action": {"type": "search", "query": "c"}},
        message("ok"),
    ]
    stub.replay("responses", response("o3-deep-research", output, response_usage(1000, 200)))
    client.responses.create(model="o3-deep-research", input="x", tools=[{"type": "web_search"}])
    (log,) = delivered(instrumented)
    tokens = genai_usd("o3-deep-research", input_tokens=1000, output_tokens=200)
    total = genai_usd("o3-deep-research", input_tokens=1000, output_tokens=200, web_searches=2)
    assert log["metadata"]["cost_breakdown"] == pytest.approx(
        {"tokens": tokens, "web_search": total - tokens}
    )
    assert log["cost"] == pytest.approx(total, rel=1e-9)
    assert "cost_unpriced" not in log["metadata"]


def test_a_call_with_no_priced_line_has_no_cost(instrumented, stub, client) -> None:
    output = [
        {
            "id": "ci_1",
            "type": "code_interpreter_call",
            "status": "completed",
            "code": "1",
            "container_id": "cntr_x",
            "outputs": [],
        },
        message("ok"),
    ]
    stub.replay("responses", response("acme-unknown-1", output, response_usage(10, 5)))
    client.responses.create(
        model="acme-unknown-1", input="x", tools=[{"type": "code_interpreter", "container": "cntr_x"}]
    )
    (log,) = delivered(instrumented)
    assert "cost" not in log
    assert set(log["metadata"]["cost_unpriced"]) == {"tokens", "containers"}
    assert "cost_breakdown" not in log["metadata"]
    assert log["metadata"]["cost_unpriced"]["containers"]["container_ids"] == ["cntr_x"]


def test_cache_writes_at_the_cache_write_rate(instrumented, stub, client) -> None:
    """Chat and Responses alike; the retention split is kept in the usage as sent."""
    from openai.types.chat import ChatCompletion

    usage = {
        "prompt_tokens": 4020,
        "completion_tokens": 60,
        "total_tokens": 4080,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 4012},
    }
    chat = sdk(
        ChatCompletion,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1765000000,
            "model": "gpt-5.6-sol",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
            ],
            "usage": usage,
        },
    )
    stub.replay("chat/completions", chat)
    client.chat.completions.create(model="gpt-5.6-sol", messages=[{"role": "user", "content": "x"}])
    split = {"ttl_30m_tokens": 12, "ttl_12h_tokens": 4000}
    answer = response("gpt-5.6-sol", [message("ok")], response_usage(4020, 60, written=4012))
    answer["usage"]["input_tokens_details"]["cache_write_tokens_details"] = split
    stub.replay("responses", answer)
    client.responses.create(model="gpt-5.6-sol", input="x")
    logs = delivered(instrumented, 2)
    expected = genai_usd("gpt-5.6-sol", input_tokens=4020, cache_write_tokens=4012, output_tokens=60)
    as_plain_input = genai_usd("gpt-5.6-sol", input_tokens=4020, output_tokens=60)
    assert expected > as_plain_input
    for log in logs:
        assert log["cost"] == pytest.approx(expected, rel=1e-9)
        assert log["prompt_cache_creation_tokens"] == 4012
        assert "metadata" not in log  # one line: no breakdown
    (responses_log,) = [log for log in logs if log["log_type"] == "response"]
    assert responses_log["usage"]["input_tokens_details"]["cache_write_tokens_details"] == split


def test_chat_search_model_pays_the_search_fee(instrumented, client) -> None:
    result = client.chat.completions.create(
        model="gpt-4o-mini-search-preview",
        messages=[{"role": "user", "content": "news?"}],
        web_search_options={},
    )
    (log,) = delivered(instrumented)
    usage = result.usage
    tokens = genai_usd(
        "gpt-4o-mini-search-preview", input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
    )
    total = genai_usd(
        "gpt-4o-mini-search-preview",
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        web_searches=1,
    )
    assert log["metadata"]["cost_breakdown"] == pytest.approx(
        {"tokens": tokens, "web_search": total - tokens}
    )
    assert log["cost"] == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize("model", ["gpt-transcribe", "whisper-1"])
def test_audio_time_priced_by_genai_prices(instrumented, stub, client, model) -> None:
    from openai.types.audio import Transcription

    answer = sdk(Transcription, {"text": "hello there", "usage": {"type": "duration", "seconds": 90}})
    stub.replay("audio/transcriptions", answer)
    client.audio.transcriptions.create(model=model, file=("talk.mp3", bytes(2048), "audio/mpeg"))
    (log,) = delivered(instrumented)
    assert log["cost"] == pytest.approx(genai_usd(model, audio_seconds=90, input_audio_seconds=90), rel=1e-9)


def test_svg_author_tokens_priced_at_its_own_rates(instrumented, stub, client) -> None:
    from openai.types import ImagesResponse

    if "svg_usage" not in ImagesResponse.model_fields:
        pytest.skip("SVG images came with a later SDK")
    usage = {
        "input_tokens": 20,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 20},
        "output_tokens": 300,
        "output_tokens_details": {"image_tokens": 300, "text_tokens": 0},
        "total_tokens": 320,
    }
    svg = {
        "model": "gpt-5.4-mini",
        "input_tokens": 200,
        "output_tokens": 900,
        "reasoning_tokens": 400,
        "total_tokens": 1100,
    }
    answer = sdk(
        ImagesResponse,
        {
            "created": 1765000000,
            "data": [{"b64_json": "PHN2Zz4="}],
            "usage": usage,
            "svg_usage": svg,
            "output_format": "svg",
        },
    )
    stub.replay("images/generations", answer)
    client.images.generate(model="gpt-image-1.5", prompt="a logo", extra_body={"output_format": "svg"})
    (log,) = delivered(instrumented)
    image = genai_usd("gpt-image-1.5", input_tokens=20, output_tokens=300, output_image_tokens=300)
    author = genai_usd("gpt-5.4-mini", input_tokens=200, output_tokens=900, output_reasoning_tokens=400)
    assert log["metadata"]["cost_breakdown"] == pytest.approx({"tokens": image, "svg": author}, rel=1e-9)
    assert log["cost"] == pytest.approx(image + author, rel=1e-9)


def test_images_without_a_model_are_billed_as_the_apis_default(instrumented, client) -> None:
    client.images.generate(prompt="a red kite", size="512x512")
    (log,) = delivered(instrumented)
    assert log["model"] == "dall-e-2"
    assert log["cost"] == pytest.approx(0.018, rel=1e-12)  # OpenAI's published DALL·E 2 price


def test_batch_lines_of_every_endpoint_are_priced(instrumented, client) -> None:
    """A Batch output file with a chat, a Responses (with a web search), images (GPT Image and
    DALL·E) and a moderations line."""
    from openai.types.chat import ChatCompletion

    chat = sdk(
        ChatCompletion,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1765000000,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        },
    )
    web = [{**WEB, "id": "ws_1", "action": {"type": "search", "query": "q"}}, message("ok")]
    answer = response("gpt-5.4-mini", web, response_usage(300, 40))
    images = {"created": 1765000000, "data": [{"b64_json": "aGk="}], "usage": IMAGE_TOOL_USAGE}
    dalle = {"created": 1765000000, "data": [{"url": "https://example.com/a.png"}]}
    verdict = {"id": "modr-1", "model": "omni-moderation-latest", "results": [{"flagged": False}]}
    bodies = [("chat", chat), ("resp", answer), ("img", images), ("dalle", dalle), ("mod", verdict)]
    lines = [
        {
            "id": f"batch_req_{i}",
            "custom_id": name,
            "response": {"status_code": 200, "request_id": "r", "body": body},
            "error": None,
        }
        for i, (name, body) in enumerate(bodies)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = client.files.create(file=("out.jsonl", data), purpose="batch")
    client.files.content(uploaded.id)
    logs = {log["metadata"]["batch_custom_id"]: log for log in delivered(instrumented, 5)}
    assert logs["chat"]["cost"] == pytest.approx(
        genai_usd("gpt-4o-mini", input_tokens=100, output_tokens=20) / 2
    )
    tokens = genai_usd("gpt-5.4-mini", input_tokens=300, output_tokens=40) / 2  # the Batch rate
    assert logs["resp"]["metadata"]["cost_breakdown"] == pytest.approx(
        {"tokens": tokens, "web_search": 0.010}
    )
    assert logs["img"]["log_type"] == "generation"
    assert "cost" not in logs["img"]  # tokens of an image model the line does not name
    assert logs["img"]["model"] == "unknown"
    assert (logs["dalle"]["model"], logs["dalle"]["cost"]) == ("dall-e-2", pytest.approx(0.020))
    assert (logs["mod"]["log_type"], logs["mod"]["cost"]) == ("guardrail", 0)


def test_per_call_fee_override(collector, stub, client) -> None:
    respan_instrument.instrument(
        api_key=RESPAN_KEY,
        base_url=collector.url + "/api",
        prices={"o3-deep-research": {"per_web_search_call": 0.5}},
    )
    try:
        output = [{**WEB, "id": "ws_1", "action": {"type": "search", "query": "a"}}, message("ok")]
        stub.replay("responses", response("o3-deep-research", output, response_usage(10, 5)))
        client.responses.create(model="o3-deep-research", input="x", tools=[{"type": "web_search"}])
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    assert log["metadata"]["cost_breakdown"]["web_search"] == pytest.approx(0.5)


def test_spans_carry_the_breakdown(traced, stub, client) -> None:
    _, exporter = traced
    stub.replay("responses", tools_answer())
    client.responses.create(model="gpt-5.4-mini", input="x", tools=TOOLS)
    assert respan_instrument.flush(10)
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    expected = expected_tools_bill()
    assert attrs["gen_ai.usage.cost"] == pytest.approx(sum(expected.values()), rel=1e-9)
    for line, usd in expected.items():
        assert attrs[f"gen_ai.usage.cost.{line}"] == pytest.approx(usd, rel=1e-9)
    assert attrs["respan.cost.unpriced"] == ("containers",)


def test_otlp_export_carries_the_breakdown(collector, stub, client) -> None:
    start(collector, export="otlp")
    try:
        stub.replay("responses", tools_answer())
        client.responses.create(model="gpt-5.4-mini", input="x", tools=TOOLS)
        assert respan_instrument.flush(10)
        assert collector.wait_for_spans(1, timeout=10)
        (span,) = collector.spans
    finally:
        respan_instrument.uninstrument()
    attrs = span["attributes"]
    expected = expected_tools_bill()
    assert attrs["gen_ai.usage.cost"] == pytest.approx(sum(expected.values()), rel=1e-9)
    assert attrs["gen_ai.usage.cost.web_search"] == pytest.approx(expected["web_search"], rel=1e-9)
    assert list(attrs["respan.cost.unpriced"]) == ["containers"]
    assert json.loads(attrs["respan.metadata.cost_breakdown"]) == pytest.approx(expected, rel=1e-9)


def test_cache_writes_on_the_span(traced, stub, client) -> None:
    _, exporter = traced
    answer = response("gpt-5.6-sol", [message("ok")], response_usage(4020, 60, written=4012))
    stub.replay("responses", answer)
    client.responses.create(model="gpt-5.6-sol", input="x")
    assert respan_instrument.flush(10)
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 4012
    expected = genai_usd("gpt-5.6-sol", input_tokens=4020, cache_write_tokens=4012, output_tokens=60)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(expected, rel=1e-9)
    assert "gen_ai.usage.cost.tokens" not in attrs  # one line: no breakdown


def test_cache_write_override(collector, stub, client) -> None:
    from openai.types.chat import ChatCompletion

    prices = {"acme-cache": {"input": 1.0, "output": 2.0, "cache_write": 5.0}}
    start(collector, prices=prices)
    try:
        usage = {
            "prompt_tokens": 1000,
            "completion_tokens": 10,
            "total_tokens": 1010,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100},
        }
        body = {
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1765000000,
            "model": "acme-cache",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
            ],
            "usage": usage,
        }
        stub.replay("chat/completions", sdk(ChatCompletion, body))
        client.chat.completions.create(model="acme-cache", messages=[{"role": "user", "content": "x"}])
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    assert log["cost"] == pytest.approx((900 * 1.0 + 100 * 5.0 + 10 * 2.0) / 1e6, rel=1e-12)


def test_an_unknown_model_names_its_tokens_unpriced(instrumented, client) -> None:
    client.chat.completions.create(model="acme-unpriced-7", messages=[{"role": "user", "content": "x"}])
    (log,) = delivered(instrumented)
    assert "cost" not in log  # never 0
    assert log["metadata"]["cost_unpriced"] == {"tokens": {"model": "acme-unpriced-7", "unit": "tokens"}}
    assert "cost_breakdown" not in log["metadata"]
