"""The NamedTuples the worker builds for every log are built as bare tuples (`usage.NEW_TUPLE`,
skipping their generated `__new__`): each must still have every field, so that a field added to
one of them later cannot leave these short."""

from __future__ import annotations

from typing import Any

from respan_instrument.endpoints.base import Outcome
from respan_instrument.endpoints.bill import Line, Priced
from respan_instrument.endpoints.chat import CHAT, Chat
from respan_instrument.endpoints.embeddings import EMBEDDINGS
from respan_instrument.endpoints.usage import TokenUsage, parse
from respan_instrument.record.call_record import CallRecord
from respan_instrument.record.cost import settle_cost
from respan_instrument.record.prices import PriceBook

USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 4}}
RESPONSE = {"model": "gpt-4o-mini-2024-07-18", "usage": USAGE, "choices": []}


def _whole(value: Any, kind: type) -> None:
    assert type(value) is kind
    assert len(value) == len(kind._fields)  # type: ignore[attr-defined]
    assert value == kind(*value)


def test_the_tuples_built_for_every_log_have_every_field() -> None:
    usage = parse(USAGE)
    _whole(usage, TokenUsage)
    assert usage is not None and usage.cached_input_tokens == 4 and usage.output_image_tokens == 0
    _whole(CHAT.outcome(RESPONSE, span_attributes=False), Outcome)
    seen: list[Any] = []

    class Watched(Chat):
        def bill(self, call: Priced) -> list[Line]:
            seen.append(call)
            return super().bill(call)

    record = CallRecord(Watched(), {"model": "gpt-4o-mini"}, "https://api.openai.com/v1", 0, "chat", {})
    settle_cost(record, RESPONSE, PriceBook(), False)
    (call,) = seen
    _whole(call, Priced)
    for endpoint in (CHAT, EMBEDDINGS):  # a chat's own bill, and the endpoints' shared one
        (line,) = endpoint.bill(call)
        _whole(line, Line)
        assert line.variant is None and line.detail is None
    assert record.cost is not None and record.cost > 0
