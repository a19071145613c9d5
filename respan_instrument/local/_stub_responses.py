"""Responses API payloads (``response`` object and its streaming events) for the stub."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._schema import example_from_schema
from ._stub_common import (
    JSON,
    CallSpec,
    Reply,
    SSEvent,
    Usage,
    count_words,
    default_reply,
    make_usage,
    new_id,
    split_text,
    text_of,
)

__all__ = ["compacted_reply", "response_object", "response_stream"]


@dataclass(frozen=True)
class _Plan:
    text: str | None
    tool_name: str | None
    arguments: str
    item_id: str
    call_id: str
    usage: Usage


def _last_user_text(body: JSON) -> str:
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    if isinstance(inp, list):
        for item in reversed(inp):
            if isinstance(item, dict) and item.get("role") == "user":
                return text_of(item.get("content"))
    return ""


def _answers_tool(body: JSON) -> bool:
    """The input ends with a tool's result: the model answers in text, so an agent's loop ends."""
    inp = body.get("input")
    last = inp[-1] if isinstance(inp, list) and inp else None
    return isinstance(last, dict) and last.get("type") == "function_call_output"


def _function_tool(body: JSON) -> JSON | None:
    tools = [
        t
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function" and t.get("name")
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or _answers_tool(body):
        return None
    if isinstance(choice, dict) and choice.get("name"):
        return next((t for t in tools if t.get("name") == choice["name"]), tools[0])
    return tools[0]


def _format(body: JSON) -> JSON | None:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return fmt if isinstance(fmt, dict) else None


def _plan(spec: CallSpec) -> _Plan:
    body = spec.body
    tool = _function_tool(body)
    reply = spec.reply if spec.reply is not None else default_reply(_last_user_text(body))
    text: str | None = reply
    name: str | None = None
    arguments = ""
    fmt = _format(body)
    if tool is not None:
        params = tool.get("parameters")
        text, name = None, str(tool["name"])
        arguments = json.dumps(example_from_schema(params if isinstance(params, dict) else {}))
    elif fmt is not None and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        text = json.dumps(example_from_schema(schema if isinstance(schema, dict) else {}))
    elif fmt is not None and fmt.get("type") == "json_object":
        text = json.dumps({"reply": reply})
    instructions = body.get("instructions")
    prompt_words = count_words(text_of(body.get("input"))) + count_words(
        instructions if isinstance(instructions, str) else ""
    )
    out_words = count_words(text if text is not None else arguments)
    usage = make_usage(prompt_words + 5, out_words, spec.usage)
    item_id = new_id("msg_" if tool is None else "fc_")
    return _Plan(text, name, arguments, item_id, new_id("call_")[:29], usage)


def _text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _item(plan: _Plan, done: bool) -> JSON:
    status = "completed" if done else "in_progress"
    if plan.tool_name is not None:
        return {
            "id": plan.item_id,
            "type": "function_call",
            "status": status,
            "call_id": plan.call_id,
            "name": plan.tool_name,
            "arguments": plan.arguments if done else "",
        }
    content = [_text_part(plan.text or "")] if done else []
    return {"id": plan.item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _conversation(value: Any) -> JSON | None:
    """The API echoes the conversation as ``{"id": ...}`` whether it was sent as an id or an object."""
    if isinstance(value, str):
        return {"id": value}
    if isinstance(value, dict) and value.get("id"):
        return {"id": value["id"]}
    return None


def _envelope(
    spec: CallSpec, rid: str, created: int, status: str, output: list[JSON], usage: JSON | None
) -> JSON:
    body = spec.body

    def echo(key: str, default: Any) -> Any:
        value = body.get(key)
        return default if value is None else value

    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": bool(body.get("background")),
        "conversation": _conversation(body.get("conversation")),
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": spec.model,
        "output": output,
        "parallel_tool_calls": echo("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": echo("store", True),
        "temperature": echo("temperature", 1.0),
        "text": echo("text", {"format": {"type": "text"}}),
        "tool_choice": echo("tool_choice", "auto"),
        "tools": echo("tools", []),
        "top_logprobs": 0,
        "top_p": echo("top_p", 1.0),
        "truncation": echo("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": echo("metadata", {}),
    }


def response_object(spec: CallSpec) -> JSON:
    """A completed ``response`` object."""
    plan = _plan(spec)
    rid, created = new_id("resp_"), int(time.time())
    return _envelope(spec, rid, created, "completed", [_item(plan, True)], plan.usage.responses())


def response_stream(spec: CallSpec) -> Iterator[SSEvent]:
    """Responses streaming events, ``response.created`` through ``response.completed``."""
    plan = _plan(spec)
    rid, created = new_id("resp_"), int(time.time())
    seq = 0

    def event(kind: str, content: bool = False, **fields: Any) -> SSEvent:
        nonlocal seq
        data: JSON = {"type": kind, "sequence_number": seq, **fields}
        seq += 1
        return SSEvent(data, event=kind, content=content)

    pending = _envelope(spec, rid, created, "in_progress", [], None)
    yield event("response.created", response=pending)
    yield event("response.in_progress", response=pending)
    ids: JSON = {"item_id": plan.item_id, "output_index": 0}
    yield event("response.output_item.added", output_index=0, item=_item(plan, False))
    pieces = split_text(plan.text if plan.text is not None else plan.arguments, spec.chunks)
    if plan.text is None:
        for piece in pieces:
            yield event("response.function_call_arguments.delta", True, **ids, delta=piece)
        yield event(
            "response.function_call_arguments.done", **ids, name=plan.tool_name, arguments=plan.arguments
        )
    else:
        part_ids: JSON = {**ids, "content_index": 0}
        yield event("response.content_part.added", **part_ids, part=_text_part(""))
        for piece in pieces:
            yield event("response.output_text.delta", True, **part_ids, delta=piece, logprobs=[])
        yield event("response.output_text.done", **part_ids, text=plan.text, logprobs=[])
        yield event("response.content_part.done", **part_ids, part=_text_part(plan.text))
    done_item = _item(plan, True)
    yield event("response.output_item.done", output_index=0, item=done_item)
    final = _envelope(spec, rid, created, "completed", [done_item], plan.usage.responses())
    yield event("response.completed", response=final)


def compacted_reply(spec: CallSpec) -> Reply:
    """``POST /responses/compact``: the input's user messages, then one compaction item, as the
    SDK's own `CompactedResponse` (the SDK is imported here only: a client calling this route
    has it)."""
    from openai.types.responses.compacted_response import CompactedResponse
    from openai.types.responses.response_compaction_item import ResponseCompactionItem
    from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails, ResponseUsage

    body = spec.body
    words = count_words(text_of(body.get("input"))) + count_words(str(body.get("instructions") or ""))
    usage = make_usage(words + 5, 12, spec.usage)
    given = body.get("input")
    items: list[Any] = given if isinstance(given, list) else []
    kept = [
        {"type": "message", "role": "user", "content": item.get("content")}
        for item in items
        if isinstance(item, dict) and item.get("role") == "user"
    ]
    compaction = ResponseCompactionItem(id=new_id("cmp_"), encrypted_content="gAAAA-stub", type="compaction")
    answer = CompactedResponse(
        id=new_id("resp_"),
        created_at=int(time.time()),
        object="response.compaction",
        output=[compaction],
        usage=ResponseUsage(
            input_tokens=usage.prompt,
            input_tokens_details=InputTokensDetails(cached_tokens=usage.cached, cache_write_tokens=0),
            output_tokens=usage.completion,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=usage.reasoning),
            total_tokens=usage.total,
        ),
    )
    data: dict[str, Any] = answer.to_dict()
    data["output"] = [*kept, *data["output"]]  # (user messages: the SDK types them loosely)
    return Reply(json=data)
