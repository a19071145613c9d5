"""What a chat call's log says, exactly, whatever the bytes of the kept request and response:
the worker parses them once, off the caller's thread, and must read them as `json.loads` does."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import OPENAI_KEY, delivered

ODD = 'quote " backslash \\ newline \n é 😀 \u2028 中文'
USAGE = {
    "prompt_tokens": 13,
    "completion_tokens": 9,
    "total_tokens": 22,
    "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0},
}
RESPONSE = {
    "id": "chatcmpl-x",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": ODD,
                "refusal": None,
                "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": "é"}'}}
                ],
            },
        },
        {
            "index": 1,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": None, "refusal": "no"},
        },
    ],
    "usage": USAGE,
    "service_tier": "default",
}


def _client(body: bytes) -> Any:
    import openai

    hx: Any = httpx
    if openai.__version__.split(".")[0] >= "3":
        import httpx2

        hx = httpx2

    def handler(request: Any) -> Any:
        return hx.Response(200, content=body, headers={"content-type": "application/json"})

    return openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=hx.Client(transport=hx.MockTransport(handler)),
    )


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ODD}]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(RESPONSE).encode(),  # ASCII, escaped
        json.dumps(RESPONSE, ensure_ascii=False).encode(),  # raw UTF-8
        json.dumps(RESPONSE, indent=1).encode() + b"\n \r\n\t",  # whitespace inside and after
    ],
    ids=["ascii", "utf8", "whitespace"],
)
def test_chat_log_from_kept_bytes(instrumented, body) -> None:
    client = _client(body)
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, n=2, temperature=0.5)
    client.close()
    assert response.choices[0].message.content == ODD
    (log,) = delivered(instrumented)
    assert log["prompt_messages"] == MESSAGES
    first = {
        "role": "assistant",
        "content": ODD,
        "tool_calls": RESPONSE["choices"][0]["message"]["tool_calls"],
    }
    assert log["completion_message"] == first
    assert log["completion_messages"] == [first, {"role": "assistant", "content": None, "refusal": "no"}]
    assert log["tool_calls"] == first["tool_calls"]
    assert log["usage"] == USAGE
    assert (log["prompt_tokens"], log["completion_tokens"]) == (13, 9)
    assert (log["prompt_cache_hit_tokens"], log["reasoning_tokens"]) == (3, 4)
    assert log["model"] == "gpt-4o-2024-08-06" and log["temperature"] == 0.5 and log["cost"] > 0
    assert log["status"] == "success" and log["stream"] is False


@pytest.mark.parametrize(
    "data",
    [
        b"{}",
        b'{"a": 1}  \n',
        b'{"a": 1} x',
        b'{"a": 1}}',
        b"{",
        b"{\x00\x00\x00",
        b'{"a": "\xed\xa0\x80"}',
        b'{"a": "\xff"}',
        b'{"a": NaN, "b": -Infinity}',
        b'{"a": "\\ud83d\\ude00 \\u00e9"}',
        b'{"a": 1}\x00',
    ],
)
def test_kept_bytes_read_as_json_loads_reads_them(data) -> None:
    """Bodies the SDK itself refuses never reach a log; the worker still reads any bytes as
    `json.loads` would (an unreadable body is no body)."""
    import math

    from respan_instrument.record.settle import _json_or

    try:
        expected = json.loads(data)
    except ValueError:
        expected = "default"
    got = _json_or(data, "default")
    if isinstance(expected, dict) and "a" in expected and isinstance(expected["a"], float):
        assert math.isnan(got["a"]) and got["b"] == expected["b"]
    else:
        assert got == expected


def _old_iso(ns: int) -> str:
    """How logs spelled their times before: `datetime`, to the rounded microsecond."""
    from datetime import datetime, timezone

    sec, us = divmod((ns + 500) // 1000, 1_000_000)
    prefix = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{prefix}.{us:06d}Z" if us else prefix + "Z"


def test_log_times_are_spelled_as_before() -> None:
    import random
    import time

    from respan_instrument.record.timestamps import iso

    rng = random.Random(7)
    day = 86_400 * 10**9
    now = time.time_ns()
    values = [0, 1, 499, 500, 999_999_499, 999_999_500, now, now - now % day, now - now % day - 1]
    values += [(y * 365 + y // 4) * day + d for y in range(30, 8000, 37) for d in (0, day - 1, 59 * day)]
    values += [rng.randrange(0, 253_402_300_799 * 10**9) for _ in range(20_000)]  # up to 9999-12-31
    values += [now + rng.randrange(-(10**12), 10**12) for _ in range(5_000)]
    for ns in values:
        assert iso(ns) == _old_iso(ns), ns


def test_log_times_at_the_collector(instrumented) -> None:
    import re
    import time
    from datetime import datetime

    client = _client(json.dumps(RESPONSE).encode())
    before = time.time()
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    after = time.time()
    client.close()
    (log,) = delivered(instrumented)
    spelled = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z\Z")
    assert spelled.match(log["start_time"]) and spelled.match(log["timestamp"])
    start = datetime.fromisoformat(log["start_time"].replace("Z", "+00:00")).timestamp()
    end = datetime.fromisoformat(log["timestamp"].replace("Z", "+00:00")).timestamp()
    assert before - 1e-6 <= start <= end <= after + 1e-6
    assert abs((end - start) - log["generation_time"]) <= 2e-6
