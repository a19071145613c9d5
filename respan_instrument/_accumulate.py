"""Sans-I/O accumulators: streamed chunks/events in, a response-shaped summary out.

They know nothing of sync or async, spans or Respan. Each exposes the attributes that a
non-streamed SDK response has (`model`, `id`, `usage`, `service_tier`, `choices` / `output`),
so the same extraction code serves both.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class _Choice:
    __slots__ = ("index", "role", "content", "refusal", "tool_calls", "finish_reason", "text")

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.text: list[str] = []


class ChatAccumulator:
    """Chat completions and legacy completions chunks, per choice index."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        self.service_tier: str | None = None
        self._choices: dict[int, _Choice] = {}

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when it carried output (text, refusal or a tool-call delta)."""
        if self.id is None:
            self.id = getattr(chunk, "id", None)
            self.model = getattr(chunk, "model", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        tier = getattr(chunk, "service_tier", None)
        if tier is not None:
            self.service_tier = tier
        choices = getattr(chunk, "choices", None)
        if not choices:  # None (some providers) or [] (the usage-only chunk)
            return False
        output = False
        for c in choices:
            index = getattr(c, "index", 0) or 0
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice(index)
            reason = getattr(c, "finish_reason", None)
            if reason is not None:
                choice.finish_reason = reason
            delta = getattr(c, "delta", None)
            if delta is None:  # legacy completions
                text = getattr(c, "text", None)
                if text:
                    choice.text.append(text)
                    output = True
                continue
            content = delta.content
            if content:
                choice.content.append(content)
                output = True
            refusal = getattr(delta, "refusal", None)
            if refusal:
                choice.refusal.append(refusal)
                output = True
            if delta.role:
                choice.role = delta.role
            if delta.tool_calls:
                self._tool_deltas(choice, delta.tool_calls)
                output = True
        return output

    @staticmethod
    def _tool_deltas(choice: _Choice, deltas: Any) -> None:
        for d in deltas:
            slot = choice.tool_calls.get(d.index)
            if slot is None:
                slot = choice.tool_calls[d.index] = {
                    "id": None,
                    "type": "function",
                    "function": {"name": "", "arguments": []},
                }
            if d.id:
                slot["id"] = d.id
            if getattr(d, "type", None):
                slot["type"] = d.type
            fn = d.function
            if fn is not None:
                if fn.name:
                    slot["function"]["name"] += fn.name
                if fn.arguments:
                    slot["function"]["arguments"].append(fn.arguments)

    @property
    def choices(self) -> list[Any]:
        """Response-shaped choices: `.message` (a dict), `.text`, `.finish_reason`."""
        out = []
        for index in sorted(self._choices):
            c = self._choices[index]
            message: dict[str, Any] = {"role": c.role, "content": "".join(c.content) if c.content else None}
            if c.refusal:
                message["refusal"] = "".join(c.refusal)
            if c.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": slot["id"],
                        "type": slot["type"],
                        "function": {
                            "name": slot["function"]["name"],
                            "arguments": "".join(slot["function"]["arguments"]),
                        },
                    }
                    for _, slot in sorted(c.tool_calls.items())
                ]
            out.append(
                SimpleNamespace(
                    index=index, message=message, text="".join(c.text), finish_reason=c.finish_reason
                )
            )
        return out


_OUTPUT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
    }
)
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesAccumulator:
    """Responses API stream events; the final `response` object wins when it arrives."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        self.service_tier: str | None = None
        self.status: str | None = None
        self.final: Any = None
        self._text: dict[int, list[str]] = {}

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            self._text.setdefault(getattr(event, "output_index", 0), []).append(event.delta)
            return True
        if kind in _FINAL_EVENTS or kind == "response.created":
            response = event.response
            self.model = getattr(response, "model", self.model)
            self.id = getattr(response, "id", self.id)
            self.status = getattr(response, "status", self.status)
            self.service_tier = getattr(response, "service_tier", None) or self.service_tier
            if kind in _FINAL_EVENTS:
                self.final = response
                self.usage = getattr(response, "usage", None)
            return False
        return kind in _OUTPUT_EVENTS and kind != "response.output_item.added"

    @property
    def output(self) -> list[Any]:
        if self.final is not None:
            return list(self.final.output)
        return [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "".join(parts)}],
            }
            for _, parts in sorted(self._text.items())
        ]
