"""Chat completions (`/chat/completions`): the spec, its stream accumulator, its log's content."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from .base import Endpoint, FilePart, Text, as_dict, fields_of, get
from .bill import TOKENS, Line, Priced
from .tools import WEB_SEARCH_CALL, chat_search_lines
from .usage import NEW_TUPLE


class _Choice:
    __slots__ = ("index", "role", "content", "refusal", "tool_calls", "finish_reason", "text")

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.content = Text()
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.text = Text()


class ChatAccumulator:
    """Chat completions and legacy completions chunks, per choice index."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        self.service_tier: str | None = None
        self._choices: dict[int, _Choice] = {}

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when it carried output (text, refusal or a tool-call delta).

        Fields are read through `fields_of` (the models' `__dict__`): reading a dozen fields by
        attribute cost more than the rest of the chunk's accumulation.
        """
        d = fields_of(chunk)
        if not self.model:  # (Azure's first chunk, its prompt filter results, has an empty model)
            model = d.get("model")
            if model:
                self.model = model
                self.id = d.get("id") or self.id
            elif self.id is None:
                self.id = d.get("id")
        usage = d.get("usage")
        if usage is not None:
            self.usage = usage
        tier = d.get("service_tier")
        if tier is not None:
            self.service_tier = tier
        choices = d.get("choices")
        if not choices:  # None (some providers) or [] (the usage-only chunk)
            return False
        output = False
        for c in choices:
            cd = fields_of(c)
            index = cd.get("index") or 0
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice(index)
            reason = cd.get("finish_reason")
            if reason is not None:
                choice.finish_reason = reason
            delta = cd.get("delta")
            if delta is None:  # legacy completions
                text = cd.get("text")
                if text:
                    choice.text.add(text)
                    output = True
                continue
            dd = fields_of(delta)
            content = dd.get("content")
            if content:
                choice.content.add(content)
                output = True
            refusal = dd.get("refusal")
            if refusal:
                choice.refusal.append(refusal)
                output = True
            role = dd.get("role")
            if role:
                choice.role = role
            tool_calls = dd.get("tool_calls")
            if tool_calls:
                self._tool_deltas(choice, tool_calls)
                output = True
        return output

    def run(self, events: list[Any], start: int) -> tuple[int, int]:
        """Take the plain chunks from `events[start]` on (parsed JSON: one choice, a delta of
        text only, no finish reason, usage or error), as `add` would, and stop at the first
        other one: (the index it stopped at, the index of the first that carried text or -1).

        Nearly every chunk of a stream is plain; read inline, one costs a third of `add`.
        """
        end = len(events)
        if self.id is None or start >= end:
            return start, -1
        first = -1
        index: Any = None  # the choice the parts are for
        parts: list[str] = []
        tier = self.service_tier
        no_model = not self.model
        i = start
        while i < end:
            e = events[i]
            if type(e) is not dict or e.get("usage") is not None or "error" in e:
                break
            if no_model and e.get("model"):
                self.model, self.id, no_model = e["model"], e.get("id") or self.id, False
            choices = e.get("choices")
            if type(choices) is not list or len(choices) != 1:
                break
            c = choices[0]
            if type(c) is not dict or c.get("finish_reason") is not None:
                break
            delta = c.get("delta")
            if type(delta) is not dict or len(delta) != 1:
                break
            content = delta.get("content")
            if type(content) is not str:
                break
            if (c.get("index") or 0) != index:
                if parts:
                    self._choices[index].content.extend(parts)
                    parts = []
                index = c.get("index") or 0
                if index not in self._choices:
                    self._choices[index] = _Choice(index)
            t = e.get("service_tier")
            if t is not None:
                tier = t
            if content:
                parts.append(content)
                if first < 0:
                    first = i
            i += 1
        if parts:
            self._choices[index].content.extend(parts)
        self.service_tier = tier
        return i, first

    @staticmethod
    def _tool_deltas(choice: _Choice, deltas: Any) -> None:
        for delta in deltas:
            d = fields_of(delta)
            index = d.get("index") or 0  # some providers leave it out
            slot = choice.tool_calls.get(index)
            if slot is None:
                slot = choice.tool_calls[index] = {
                    "id": None,
                    "type": "function",
                    "function": {"name": "", "arguments": Text()},
                }
            if d.get("id"):
                slot["id"] = d["id"]
            if d.get("type"):
                slot["type"] = d["type"]
            fn = d.get("function")
            if fn is not None:
                f = fields_of(fn)
                if f.get("name"):
                    slot["function"]["name"] += f["name"]
                if f.get("arguments"):
                    slot["function"]["arguments"].add(f["arguments"])

    @property
    def choices(self) -> list[Any]:
        """Response-shaped choices: `.message` (a dict), `.text`, `.finish_reason`."""
        out = []
        for index in sorted(self._choices):
            c = self._choices[index]
            message: dict[str, Any] = {"role": c.role, "content": c.content.value() or None}
            if c.refusal:
                message["refusal"] = "".join(c.refusal)
            if c.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": slot["id"],
                        "type": slot["type"],
                        "function": {
                            "name": slot["function"]["name"],
                            "arguments": slot["function"]["arguments"].value(),
                        },
                    }
                    for _, slot in sorted(c.tool_calls.items())
                ]
            out.append(
                SimpleNamespace(
                    index=index, message=message, text=c.text.value(), finish_reason=c.finish_reason
                )
            )
        return out


def _message(message: Any) -> dict[str, Any]:
    """A choice's message as the provider sent it. Read field by field (an SDK model's declared
    fields are in its `__dict__`, unset ones None; undeclared ones in `__pydantic_extra__`):
    dumping the whole model, on the caller's thread of a call whose span carries content, cost
    more than the rest of that content's work."""
    if message is None:
        return {"role": "assistant", "content": None}
    data = fields_of(message)
    # (parsed JSON, the usual message, has no extras; a getattr on it would raise inside)
    extra = None if type(message) is dict else getattr(message, "__pydantic_extra__", None)
    if extra:  # fields the SDK's model does not declare (`audio` before openai 1.52)
        data = {**extra, **data}
    out: dict[str, Any] = {"role": data.get("role", "assistant"), "content": as_dict(data.get("content"))}
    for key in ("tool_calls", "refusal", "audio", "function_call"):
        value = data.get(key)
        if value:
            out[key] = [as_dict(v) for v in value] if type(value) is list else as_dict(value)
    return out


def choices_of(response: Any) -> list[Any]:
    choices = get(response, "choices")
    return list(choices) if choices else []


class Chat(Endpoint):
    routes = ("/chat/completions",)
    operation = "chat"
    log_type = "chat"
    price_units = (WEB_SEARCH_CALL,)

    def accumulator(self) -> ChatAccumulator:
        return ChatAccumulator()

    def bill(self, call: Priced) -> list[Line]:
        """Tokens, and a search model's search call."""
        if call.usage is None:
            return []
        line = NEW_TUPLE(Line, (TOKENS, call.model, TOKENS, call.usage, None, None))
        if call.request.get("web_search_options") is None:
            return [line]
        return [line, *chat_search_lines(call.model, call.request)]

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        if "messages" in request:
            log["prompt_messages"] = request["messages"]
        choices = choices_of(response)
        if choices:
            messages = [_message(get(c, "message")) for c in choices]
            log["completion_message"] = messages[0]
            if len(messages) > 1:
                log["completion_messages"] = messages
            tool_calls = [tc for m in messages for tc in m.get("tool_calls") or ()]
            if tool_calls:
                log["tool_calls"] = tool_calls


CHAT = Chat()
