"""Pure: a request log's content as the GenAI conventions' messages (runs on the worker).

The conventions' schema (`gen_ai.input.messages`, `gen_ai.output.messages`,
`gen_ai.system_instructions`): a message is `{"role", "parts": [...]}`, an output message adds
`finish_reason`; a part is `{"type": "text", "content"}`, `{"type": "tool_call", "id", "name",
"arguments"}`, `{"type": "tool_call_response", "id", "response"}`, `{"type": "uri", "modality",
"uri"}`, `{"type": "reasoning", "content"}`, or another type with its own fields. The log's
content was truncated already (data URLs replaced, oldest messages dropped), so these are too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_TEXT_TYPES = frozenset({"text", "input_text", "output_text", "refusal"})


def _text(content: Any) -> dict[str, Any]:
    return {
        "type": "text",
        "content": content if isinstance(content, str) else json.dumps(content, default=str),
    }


def _arguments(raw: Any) -> Any:
    """Tool-call arguments as the object the model wrote, when they parse; else as sent."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _part(part: Any) -> dict[str, Any]:
    """One piece of a message's content (chat content parts and Responses items alike)."""
    if isinstance(part, str):
        return _text(part)
    if not isinstance(part, Mapping):
        return _text(part)
    kind = part.get("type")
    if kind in _TEXT_TYPES:
        return _text(part.get("text", part.get("refusal", "")))
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        uri = image.get("url") if isinstance(image, Mapping) else image
        if uri is None:
            uri = part.get("file_id")
        return {"type": "uri", "modality": "image", "uri": str(uri)}
    if kind in ("input_audio", "audio"):
        return {"type": "blob", "modality": "audio", "content": "(audio)"}
    if kind in ("function_call", "custom_tool_call"):
        return {
            "type": "tool_call",
            "id": part.get("call_id") or part.get("id"),
            "name": part.get("name"),
            "arguments": _arguments(part.get("arguments", part.get("input"))),
        }
    if kind in ("function_call_output", "custom_tool_call_output"):
        return {"type": "tool_call_response", "id": part.get("call_id"), "response": part.get("output")}
    if kind == "reasoning":
        summary = part.get("summary") or []
        texts = [s.get("text", "") for s in summary if isinstance(s, Mapping)]
        return {"type": "reasoning", "content": "\n".join(texts)}
    return {**part, "type": str(kind or "unknown")}


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text(content)]
    if isinstance(content, Sequence):
        return [_part(p) for p in content]
    return [_part(content)]


def _chat_message(message: Any, finish_reason: str | None = None) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        return {"role": "user", "parts": _parts(message)}
    role = str(message.get("role") or "user")
    if role == "tool":
        parts = [
            {
                "type": "tool_call_response",
                "id": message.get("tool_call_id"),
                "response": message.get("content"),
            }
        ]
    else:
        parts = _parts(message.get("content"))
        if message.get("refusal"):
            parts.append(_text(message["refusal"]))
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                function = call.get("function")
                if not isinstance(function, Mapping):
                    function = {}
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": _arguments(function.get("arguments")),
                    }
                )
    out: dict[str, Any] = {"role": role, "parts": parts}
    if message.get("name"):
        out["name"] = message["name"]
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out


def _items(items: Any) -> list[dict[str, Any]]:
    """Responses API input items (or a plain prompt) as messages: consecutive items that are
    not messages join one message of the role that makes them."""
    if isinstance(items, str):
        return [{"role": "user", "parts": [_text(items)]}]
    if not isinstance(items, Sequence):
        return [{"role": "user", "parts": _parts(items)}]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Mapping) and "role" in item and item.get("type", "message") == "message":
            out.append({"role": str(item["role"]), "parts": _parts(item.get("content"))})
            continue
        part = _part(item)
        role = {"tool_call_response": "tool", "tool_call": "assistant", "reasoning": "assistant"}.get(
            part["type"], "user"
        )
        if out and out[-1]["role"] == role and role != "user":
            out[-1]["parts"].append(part)
        else:
            out.append({"role": role, "parts": [part]})
    return out


def input_messages(log: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    if "prompt_messages" in log and isinstance(log["prompt_messages"], Sequence):
        return [_chat_message(m) for m in log["prompt_messages"]]
    if "input" in log:
        return _items(log["input"])
    return None


def output_messages(log: Mapping[str, Any], finish_reasons: Sequence[str]) -> list[dict[str, Any]] | None:
    def reason(index: int) -> str:
        return finish_reasons[index] if index < len(finish_reasons) else "stop"

    many = log.get("completion_messages")
    if isinstance(many, Sequence) and many:
        return [_chat_message(m, reason(i)) for i, m in enumerate(many)]
    if "completion_message" in log:
        return [_chat_message(log["completion_message"], reason(0))]
    output = log.get("output")
    if output is None:
        return None
    if isinstance(output, str):
        return [{"role": "assistant", "parts": [_text(output)], "finish_reason": reason(0)}]
    if isinstance(output, Sequence) and all(isinstance(o, str) for o in output):
        return [
            {"role": "assistant", "parts": [_text(o)], "finish_reason": reason(i)}
            for i, o in enumerate(output)
        ]
    parts: list[dict[str, Any]] = []
    for item in output if isinstance(output, Sequence) else (output,):
        if isinstance(item, Mapping) and item.get("type") == "message":
            parts.extend(_parts(item.get("content")))
        else:
            parts.append(_part(item))
    return [{"role": "assistant", "parts": parts, "finish_reason": reason(0)}]


def system_instructions(log: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    instructions = log.get("instructions")
    if not instructions:
        return None
    return _parts(instructions)


def flat(message: Mapping[str, Any]) -> str:
    """A message's content as one string, for the legacy indexed attributes: its text when it
    is all text, else its parts as JSON."""
    parts = message.get("parts") or []
    if all(p.get("type") == "text" for p in parts):
        return "".join(str(p.get("content", "")) for p in parts)
    return json.dumps(parts, default=str, ensure_ascii=False)
