"""Chat Completions payloads (plain, tool call, structured output; whole and streamed) for the stub."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ._schema import example_from_schema
from ._stub_common import (
    JSON,
    CallSpec,
    SSEvent,
    Usage,
    count_words,
    default_reply,
    make_usage,
    new_id,
    split_text,
    text_of,
)

__all__ = ["chat_completion", "chat_completion_stream"]

_FINGERPRINT = "fp_stub"


@dataclass(frozen=True)
class _Choice:
    text: str | None
    tool_id: str | None = None
    tool_name: str | None = None
    arguments: str | None = None
    finish_reason: str = "stop"


def _messages(body: JSON) -> list[JSON]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _last_user_text(messages: list[JSON]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def _answers_tool(body: JSON) -> bool:
    """The last message is a tool's result: the model answers in text, so an agent's loop ends."""
    messages = _messages(body)
    return bool(messages) and messages[-1].get("role") == "tool"


def _chosen_tool(body: JSON) -> JSON | None:
    tools: list[JSON] = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or _answers_tool(body):
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        return next((t for t in tools if t.get("name") == wanted), tools[0])
    return tools[0]


def _structured_text(body: JSON, reply: str) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return json.dumps(example_from_schema(schema if isinstance(schema, dict) else {}))
    if fmt.get("type") == "json_object":
        return json.dumps({"reply": reply})
    return None


def _truncate(text: str, body: JSON) -> tuple[str, str]:
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    words = text.split()
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(words):
        return " ".join(words[:limit]), "length"
    return text, "stop"


def _plan(spec: CallSpec) -> tuple[list[_Choice], Usage]:
    body = spec.body
    messages = _messages(body)
    n = body.get("n")
    count = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    base = spec.reply if spec.reply is not None else default_reply(_last_user_text(messages))
    tool = _chosen_tool(body)
    choices: list[_Choice] = []
    for index in range(count):
        if tool is not None:
            params = tool.get("parameters")
            args = json.dumps(example_from_schema(params if isinstance(params, dict) else {}))
            name = str(tool["name"])
            choices.append(_Choice(None, new_id("call_")[:29], name, args, "tool_calls"))
            continue
        text = base if index == 0 else f"{base} (choice {index + 1})"
        structured = _structured_text(body, text)
        if structured is not None:
            choices.append(_Choice(structured))
        else:
            text, finish = _truncate(text, body)
            choices.append(_Choice(text, finish_reason=finish))
    words = sum(count_words(c.text if c.text is not None else c.arguments or "") for c in choices)
    prompt_words = sum(count_words(text_of(m.get("content"))) for m in messages)
    return choices, make_usage(prompt_words + 5, words, spec.usage)


def _message(choice: _Choice) -> JSON:
    message: JSON = {"role": "assistant", "content": choice.text, "refusal": None, "annotations": []}
    if choice.tool_id is not None:
        message["tool_calls"] = [
            {
                "id": choice.tool_id,
                "type": "function",
                "function": {"name": choice.tool_name, "arguments": choice.arguments},
            }
        ]
    return message


def chat_completion(spec: CallSpec) -> JSON:
    """A complete ``chat.completion`` object."""
    choices, usage = _plan(spec)
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": spec.model,
        "choices": [
            {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(choices)
        ],
        "usage": usage.chat(),
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }


def _first_delta(choice: _Choice) -> JSON:
    if choice.tool_id is None:
        return {"role": "assistant", "content": "", "refusal": None}
    call = {
        "index": 0,
        "id": choice.tool_id,
        "type": "function",
        "function": {"name": choice.tool_name, "arguments": ""},
    }
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}


def _piece_delta(choice: _Choice, piece: str) -> JSON:
    if choice.tool_id is None:
        return {"content": piece}
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def chat_completion_stream(spec: CallSpec) -> Iterator[SSEvent]:
    """``chat.completion.chunk`` events, optional usage-only chunk, then ``[DONE]``."""
    choices, usage = _plan(spec)
    options = spec.body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    chunk_id, created = new_id("chatcmpl-"), int(time.time())

    def chunk(items: list[JSON], usage_value: JSON | None = None) -> JSON:
        data: JSON = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": spec.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
            "choices": items,
        }
        if include_usage:
            data["usage"] = usage_value
        return data

    def item(index: int, delta: JSON, finish: str | None = None) -> JSON:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    for i, choice in enumerate(choices):
        yield SSEvent(chunk([item(i, _first_delta(choice))]))
    pieces = [split_text(c.text if c.text is not None else c.arguments or "", spec.chunks) for c in choices]
    for k in range(spec.chunks):
        for i, choice in enumerate(choices):
            yield SSEvent(chunk([item(i, _piece_delta(choice, pieces[i][k]))]), content=True)
    for i, choice in enumerate(choices):
        yield SSEvent(chunk([item(i, {}, choice.finish_reason)]))
    if include_usage:
        yield SSEvent(chunk([], usage.chat()))
    yield SSEvent("[DONE]")
