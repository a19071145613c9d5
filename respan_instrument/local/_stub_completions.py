"""Legacy Completions (``text_completion``) payloads, whole and streamed, for the stub."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ._stub_common import JSON, CallSpec, SSEvent, count_words, default_reply, make_usage, new_id, split_text

__all__ = ["completion", "completion_stream"]


def _prompts(body: JSON) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list):
        return [p for p in prompt if isinstance(p, str)]
    return []


def _texts(spec: CallSpec) -> list[str]:
    n = spec.body.get("n")
    count = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    prompts = _prompts(spec.body)
    base = spec.reply if spec.reply is not None else default_reply(prompts[-1] if prompts else "")
    return [base if i == 0 else f"{base} (choice {i + 1})" for i in range(count)]


def _usage(spec: CallSpec, texts: list[str]) -> JSON:
    prompt_words = sum(count_words(p) for p in _prompts(spec.body))
    return make_usage(prompt_words + 5, sum(count_words(t) for t in texts), spec.usage).completions()


def completion(spec: CallSpec) -> JSON:
    """A complete ``text_completion`` object."""
    texts = _texts(spec)
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": spec.model,
        "choices": [
            {"text": text, "index": i, "logprobs": None, "finish_reason": "stop"}
            for i, text in enumerate(texts)
        ],
        "usage": _usage(spec, texts),
        "system_fingerprint": None,
    }


def completion_stream(spec: CallSpec) -> Iterator[SSEvent]:
    """Streamed ``text_completion`` chunks, optional usage-only chunk, then ``[DONE]``."""
    texts = _texts(spec)
    options = spec.body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    cid, created = new_id("cmpl-"), int(time.time())

    def chunk(choices: list[JSON], usage: JSON | None = None) -> JSON:
        data: JSON = {"id": cid, "object": "text_completion", "created": created, "model": spec.model}
        data["choices"] = choices
        if include_usage:
            data["usage"] = usage
        return data

    pieces = [split_text(text, spec.chunks) for text in texts]
    for k in range(spec.chunks):
        for i in range(len(texts)):
            choice = {"text": pieces[i][k], "index": i, "logprobs": None, "finish_reason": None}
            yield SSEvent(chunk([choice]), content=True)
    for i in range(len(texts)):
        yield SSEvent(chunk([{"text": "", "index": i, "logprobs": None, "finish_reason": "stop"}]))
    if include_usage:
        yield SSEvent(chunk([], _usage(spec, texts)))
    yield SSEvent("[DONE]")
