"""Shared benchmark plumbing: an in-process mock transport for the openai SDK of any major."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any


def httpx_module() -> Any:
    """The HTTP library the installed openai uses (httpx2 for 3.x, httpx before)."""
    import openai

    if openai.__version__.split(".")[0] >= "3":
        import httpx2

        return httpx2
    import httpx

    return httpx


CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, how can I help?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 7,
            "total_tokens": 19,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
).encode()


def stream_body(chunks: int) -> bytes:
    lines = []
    for i in range(chunks):
        delta = {"role": "assistant", "content": ""} if i == 0 else {"content": f"tok{i} "}
        chunk = {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        lines.append(f"data: {json.dumps(chunk)}\n\n")
    final = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    lines.append(f"data: {json.dumps(final)}\n\n")
    usage = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    lines.append(f"data: {json.dumps(usage)}\n\n")
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def mock_client(handler_body: Callable[[Any], tuple[bytes, str]], *, is_async: bool = False) -> Any:
    import openai

    hx = httpx_module()

    def handler(request: Any) -> Any:
        body, ctype = handler_body(request)
        return hx.Response(200, content=body, headers={"content-type": ctype})

    if is_async:
        return openai.AsyncOpenAI(
            api_key="sk-bench",
            base_url="https://api.openai.com/v1",
            http_client=hx.AsyncClient(transport=hx.MockTransport(handler)),
        )
    return openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        http_client=hx.Client(transport=hx.MockTransport(handler)),
    )


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """(wall µs per call, this thread's CPU µs per call) over n calls.

    Thread CPU is the caller-thread cost proper: it leaves out the time our background
    worker holds the GIL, which the wall clock of a CPU-bound loop also contains.
    """
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - w0) / n * 1e6, (time.thread_time() - c0) / n * 1e6


def median(values: list[float]) -> float:
    return statistics.median(values)


def clock_calls(owner: Any, attr: str, label: str, clocks: dict[str, float]) -> None:
    """Replace `owner.attr` by a wrapper that adds the thread CPU of each call to `clocks[label]`."""
    original = getattr(owner, attr)

    def clocked(*a: Any, **k: Any) -> Any:
        t0 = time.thread_time()
        try:
            return original(*a, **k)
        finally:
            clocks[label] = clocks.get(label, 0.0) + time.thread_time() - t0

    setattr(owner, attr, clocked)
