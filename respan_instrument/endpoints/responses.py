"""The Responses API (`/responses`, and the same under `?beta=true`): creating, polling,
cancelling and compacting responses; the spec, its stream accumulator, its log's content."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, as_dict, fields_of, get
from .bill import Line, Priced
from .tools import UNITS, tool_lines

_OUTPUT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
    }
)
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
# statuses after which a response changes no more
TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})


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
        e = fields_of(event)
        kind = e.get("type")
        if kind == "response.output_text.delta":
            self._text.setdefault(e.get("output_index") or 0, []).append(e.get("delta") or "")
            return True
        if kind in _FINAL_EVENTS or kind == "response.created":
            response = e.get("response")
            r = fields_of(response) if response is not None else {}
            self.model = r.get("model", self.model)
            self.id = r.get("id", self.id)
            self.status = r.get("status", self.status)
            self.service_tier = r.get("service_tier") or self.service_tier
            if kind in _FINAL_EVENTS:
                self.final = response
                self.usage = r.get("usage")
            return False
        return kind in _OUTPUT_EVENTS and kind != "response.output_item.added"

    def run(self, events: list[Any], start: int) -> tuple[int, int]:
        """Take the text deltas from `events[start]` on (parsed JSON), as `add` would, and stop
        at the first other event: (the index it stopped at, the index of the first that carried
        output or -1). Nearly every event of a stream is one."""
        end = len(events)
        index: Any = None
        parts: list[str] = []
        i = start
        while i < end:
            e = events[i]
            if type(e) is not dict or e.get("type") != "response.output_text.delta":
                break
            at = e.get("output_index") or 0
            if at != index:
                index = at
                parts = self._text.setdefault(at, [])
            parts.append(e.get("delta") or "")
            i += 1
        return i, (start if i > start else -1)

    @property
    def output(self) -> list[Any]:
        if self.final is not None:
            return list(fields_of(self.final).get("output") or ())
        return [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "".join(parts)}],
            }
            for _, parts in sorted(self._text.items())
        ]


class Responses(Endpoint):
    routes = ("/responses", "/responses?beta=true")
    operation = "chat"
    log_type = "response"
    usage_names = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
    stream_usage = False  # its final event always carries the usage
    stream_errors = False  # an error arrives as a `response.failed` / `error` event the SDK passes on
    terminal_statuses = TERMINAL
    price_units = UNITS
    finish_field = "status"

    def accumulator(self) -> ResponsesAccumulator:
        return ResponsesAccumulator()

    def bill(self, call: Priced) -> list[Line]:
        """Tokens, and the built-in tools the response used."""
        lines = super().bill(call)
        if call.response is not None:
            lines.extend(tool_lines(call.model, call.request, call.response))
        return lines

    def parameters(self, log: dict[str, Any], request: Mapping[str, Any]) -> None:
        """As every endpoint, and `reasoning.effort` as the log's `reasoning_effort`."""
        super().parameters(log, request)
        effort = get(request.get("reasoning"), "effort")
        if isinstance(effort, str) and "reasoning_effort" not in log:
            log["reasoning_effort"] = effort

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        if "instructions" in request and request["instructions"]:
            log["instructions"] = request["instructions"]
        if "input" in request:
            log["input"] = request["input"]
        output = get(response, "output")
        if output is not None:
            items = [as_dict(item) for item in output]
            log["output"] = items
            calls = [i for i in items if isinstance(i, Mapping) and i.get("type") == "function_call"]
            if calls:
                log["tool_calls"] = calls

    def terminal_only(self, request: Mapping[str, Any]) -> bool:
        """A background response is logged once, by whichever call first sees it finished."""
        return request.get("background") is True

    def ended(self, request: Mapping[str, Any], response: Any) -> tuple[str, str | None] | None:
        """A background response that stopped short of `completed` says so (a failure with its
        error message)."""
        if not self.terminal_only(request):
            return None
        status = get(response, "status")
        if status not in ("cancelled", "incomplete", "failed"):
            return None
        if status != "failed":
            return status, None
        message = get(get(response, "error"), "message")
        return status, message if isinstance(message, str) and message else "The response failed"

    def thread(self, request: Mapping[str, Any], response: Any) -> tuple[str | None, str | None]:
        """(the conversation this response belongs to, the response it continues)."""
        conversation = request.get("conversation")
        if isinstance(conversation, Mapping):
            conversation = conversation.get("id")
        if not isinstance(conversation, str):
            conversation = get(get(response, "conversation"), "id") if response is not None else None
        previous = request.get("previous_response_id")
        if not isinstance(previous, str) and response is not None:
            previous = get(response, "previous_response_id")
        return (
            conversation if isinstance(conversation, str) and conversation else None,
            previous if isinstance(previous, str) and previous else None,
        )


class RetrievedResponse(Responses):
    """`responses.retrieve` (also streamed from `starting_after`): a poll of a background
    response, logged only when it shows the response finished for the first time."""

    routes = ("/responses/{id}", "/responses/{id}?beta=true")
    methods = frozenset({"get"})
    request_fields: frozenset[str] = frozenset()
    polls = True

    def terminal_only(self, request: Mapping[str, Any]) -> bool:
        return True


class CancelledResponse(RetrievedResponse):
    """`responses.cancel`: answers the response as it stands, usually `cancelled`."""

    routes = ("/responses/{id}/cancel", "/responses/{id}/cancel?beta=true")
    methods = frozenset({"post"})


class CompactedResponse(Responses):
    """`responses.compact`: a conversation's items in, the compacted items out (a
    `CompactedResponse`, which names no model: the log takes the request's)."""

    routes = ("/responses/compact", "/responses/compact?beta=true")

    def terminal_only(self, request: Mapping[str, Any]) -> bool:
        return False


RESPONSES = Responses()
RETRIEVED_RESPONSE = RetrievedResponse()
CANCELLED_RESPONSE = CancelledResponse()
COMPACTED_RESPONSE = CompactedResponse()
