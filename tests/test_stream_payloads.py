"""What a stream's log says, exactly: the worker reads a lean stream's events after the call, by
a fast path for its plain chunks; every other shape must come out as the SDK's own objects say.
The same stream is also read traced (the app's provider: the caller's thread reads the SDK's
models, not the kept JSON), and both logs must agree."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import OPENAI_KEY, delivered, start

import respan_instrument

MSG = [{"role": "user", "content": "hi"}]
BASE = {"id": "chatcmpl-p", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06"}
ODD = 'quote " backslash \\ newline \n tab \t é 😀 \u2028'


def _chunk(index: int, delta: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    item = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {
        **BASE,
        "service_tier": "default",
        "system_fingerprint": "fp_1",
        **top,
        "choices": [item],
        "usage": None,
        "obfuscation": "x" * (index + 3),
    }


def chat_events() -> list[dict[str, Any]]:
    """Two choices, interleaved: text (some of it empty, some escaped, some in chunks that
    repeat the role), then a tool call, on choice 0; a refusal on choice 1; then the usage."""
    events = [
        _chunk(0, {"role": "assistant", "content": "", "refusal": None}),
        _chunk(1, {"role": "assistant", "content": "", "refusal": None}),
    ]
    for i in range(40):
        events.append(_chunk(0, {"content": f"a{i} "}))
        if i % 3 == 0:
            events.append(_chunk(0, {"content": ""}))
        if i < 5:
            events.append(_chunk(1, {"content": f"b{i} "}))
    events.append(_chunk(0, {"content": ODD}))
    events.append(_chunk(0, {"role": "assistant", "content": "c "}))  # some providers repeat the role
    events.append(_chunk(0, {"content": "end."}))
    events.append(_chunk(1, {"refusal": "I can't "}))
    events.append(_chunk(1, {"refusal": "help with that."}))
    tool = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
    events.append(_chunk(0, {"tool_calls": [tool]}))
    for piece in ('{"q"', ': "x', '"}'):
        events.append(_chunk(0, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    events.append(_chunk(0, {}, "tool_calls"))
    events.append(_chunk(1, {}, "stop"))
    usage = {
        "prompt_tokens": 21,
        "completion_tokens": 57,
        "total_tokens": 78,
        "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 0},
    }
    events.append({**BASE, "service_tier": "default", "choices": [], "usage": usage})
    return events


def _client(events: list[dict[str, Any]]) -> Any:
    import openai

    hx: Any = httpx
    if openai.__version__.split(".")[0] >= "3":
        import httpx2

        hx = httpx2
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"

    def handler(request: Any) -> Any:
        return hx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})

    return openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url="https://api.openai.com/v1",
        http_client=hx.Client(transport=hx.MockTransport(handler)),
    )


def _chat_log(collector: Any) -> dict[str, Any]:
    client = _client(chat_events())
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True, n=2))
    client.close()
    assert len(chunks) == len(chat_events()) - 1  # the usage chunk we asked for stays ours
    (log,) = delivered(collector)
    return log


CONTENT_FIELDS = (
    "completion_message",
    "completion_messages",
    "tool_calls",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_cache_hit_tokens",
    "reasoning_tokens",
    "cost",
    "model",
    "status",
    "stream",
)


def _expect_chat(log: dict[str, Any]) -> None:
    text0 = "".join(f"a{i} " for i in range(40)) + ODD + "c end."
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    first = {"role": "assistant", "content": text0, "tool_calls": [call]}
    second = {
        "role": "assistant",
        "content": "".join(f"b{i} " for i in range(5)),
        "refusal": "I can't help with that.",
    }
    assert log["completion_message"] == first
    assert log["completion_messages"] == [first, second]
    assert log["tool_calls"] == [call]
    assert log["usage"] == chat_events()[-1]["usage"]
    assert (log["prompt_tokens"], log["completion_tokens"]) == (21, 57)
    assert (log["prompt_cache_hit_tokens"], log["reasoning_tokens"]) == (8, 5)
    assert log["model"] == "gpt-4o-2024-08-06" and log["cost"] > 0
    assert log["status"] == "success" and log["stream"] is True and "metadata" not in log
    assert 0 < log["ttft"] <= log["generation_time"]


def test_lean_chat_stream_log(instrumented) -> None:
    _expect_chat(_chat_log(instrumented))


def test_traced_chat_stream_log_is_the_same(collector, traced) -> None:
    traced_log = _chat_log(collector)
    _expect_chat(traced_log)
    respan_instrument.uninstrument()
    collector.clear()
    start(collector)
    lean_log = _chat_log(collector)
    assert {k: lean_log.get(k) for k in CONTENT_FIELDS} == {k: traced_log.get(k) for k in CONTENT_FIELDS}


def test_stream_of_only_plain_chunks(instrumented) -> None:
    """The common stream: after the first chunk every one is plain up to the finish."""
    events = [_chunk(0, {"role": "assistant", "content": ""})]
    events += [
        _chunk(0, {"content": f"t{i} "}, service_tier="priority" if i == 30 else "default") for i in range(70)
    ]
    events.append(_chunk(0, {}, "length"))
    client = _client(events)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True))
    client.close()
    (log,) = delivered(instrumented)
    assert len(chunks) == 72
    assert log["completion_message"] == {"role": "assistant", "content": "".join(f"t{i} " for i in range(70))}
    assert "usage" not in log and "prompt_tokens" not in log


def _responses_events(final: bool) -> list[dict[str, Any]]:
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4o-2024-08-06",
        "status": "in_progress",
        "output": [],
        "usage": None,
    }
    events: list[dict[str, Any]] = [{"type": "response.created", "sequence_number": 0, "response": response}]
    seq = 1
    for index in (0, 1):
        item = {
            "type": "message",
            "id": f"msg_{index}",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        events.append(
            {
                "type": "response.output_item.added",
                "sequence_number": seq,
                "output_index": index,
                "item": item,
            }
        )
        seq += 1
    for i in range(30):
        index = 0 if i % 4 else 1
        events.append(
            {
                "type": "response.output_text.delta",
                "sequence_number": seq,
                "item_id": f"msg_{index}",
                "output_index": index,
                "content_index": 0,
                "delta": ODD if i == 7 else f"r{i} ",
                "logprobs": [],
                "obfuscation": "abc",
            }
        )
        seq += 1
    if final:
        done = {
            **response,
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_0",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "final", "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": 11,
                "output_tokens": 30,
                "total_tokens": 41,
                "input_tokens_details": {"cached_tokens": 4},
                "output_tokens_details": {"reasoning_tokens": 2},
            },
        }
        events.append({"type": "response.completed", "sequence_number": seq, "response": done})
    return events


@pytest.mark.parametrize("final", [True, False])
def test_responses_stream_log(instrumented, final) -> None:
    client = _client(_responses_events(final))
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    client.close()
    (log,) = delivered(instrumented)
    assert len(events) == len(_responses_events(final))
    assert 0 < log["ttft"] <= log["generation_time"]
    if final:
        assert log["output"] == _responses_events(True)[-1]["response"]["output"]
        assert log["usage"] == _responses_events(True)[-1]["response"]["usage"]
        assert (log["prompt_tokens"], log["completion_tokens"]) == (11, 30)
        assert (log["prompt_cache_hit_tokens"], log["reasoning_tokens"]) == (4, 2)
        return
    texts = {0: "", 1: ""}
    for i in range(30):
        texts[0 if i % 4 else 1] += ODD if i == 7 else f"r{i} "
    assert log["output"] == [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": texts[i]}]}
        for i in (0, 1)
    ]
    assert "usage" not in log
