"""The worker asks orjson first to parse and encode; whatever it takes must come out exactly as
the standard library alone would write it (where orjson is not installed, it is all there is)."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from typing import Any, NamedTuple

import pytest

from respan_instrument.endpoints.chat import _message
from respan_instrument.record import fastjson
from respan_instrument.record.log_json import encode_log, json_text
from respan_instrument.record.replay import parsed_events
from respan_instrument.record.settle import _json_or


class Tier(enum.Enum):
    GOLD = "gold"


class Level(enum.IntEnum):
    HIGH = 3


class Role(str, enum.Enum):
    USER = "user"


class Point(NamedTuple):
    x: int
    y: int


class Score(float):
    pass


class Row(tuple):  # type: ignore[type-arg]
    pass


class Hiding(dict):  # type: ignore[type-arg]
    """A mapping whose items() leaves a key out: the standard library asks items(), so must we."""

    def items(self) -> Any:
        return [(k, v) for k, v in super().items() if k != "secret"]


@dataclasses.dataclass
class Box:
    size: int


ODD_VALUES: dict[str, Any] = {
    "int enum": Level.HIGH,
    "str enum": Role.USER,
    "namedtuple": Point(1, 2),
    "tuple subclass": Row((1,)),
    "float subclass": Score(0.5),
    "float subclass inf": Score("inf"),
    "ordered dict": collections.OrderedDict([("b", 1), ("a", 2)]),
    "default dict": collections.defaultdict(list, {"a": [1]}),
    "dict hiding a key": Hiding(a=1, secret=2),
    "datetime": datetime.datetime(2026, 12, 6, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "date": datetime.date(2026, 12, 6),
    "uuid": uuid.UUID(int=7),
    "decimal": decimal.Decimal("1.10"),
    "dataclass": Box(3),
    "set": {1},
    "bytes": b"ab",
    "big int": 2**70,
    "negative big int": -(2**63) - 1,
    "nan nested": [1.0, [float("nan")], {"x": float("-inf")}],
    "minus zero": -0.0,
    "small float": 1e-06,
    "lone surrogate": b"a \\ud800 b".decode("unicode_escape"),
    "int key": {1: "one"},
    "deep": json.loads("[" * 300 + "]" * 300),
}


def _both(fn: Any, *args: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = fn(*args)
    with monkeypatch.context() as m:
        m.setattr(fastjson, "_orjson", None)
        slow = fn(*args)
    return fast, slow


@pytest.mark.parametrize("name", list(ODD_VALUES))
def test_a_log_is_the_same_json_either_way(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = {"model": "m", "metadata": {"value": ODD_VALUES[name], "plain": [1, "two", None, True, 2.5]}}
    fast, slow = _both(encode_log, log, 10**6, monkeypatch=monkeypatch)
    # the same values, keys in the same order (a number may be spelled 1e-6 or 1e-06)
    assert repr(json.loads(fast)) == repr(json.loads(slow))


@pytest.mark.parametrize("name", ["nan nested", "datetime", "namedtuple", "float subclass inf", "big int"])
def test_span_content_text_is_the_same_either_way(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    value = [{"role": "user", "parts": [{"type": "tool_call", "arguments": {"x": ODD_VALUES[name]}}]}]
    fast, slow = _both(json_text, value, monkeypatch=monkeypatch)
    assert repr(json.loads(fast)) == repr(json.loads(slow))
    assert "NaN" not in fast and "Infinity" not in fast


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 123456789012345678901234567891, "b": [-9223372036854775809, 18446744073709551616]}',
        b'{"a": 9223372036854775807, "b": -9223372036854775808, "c": 1e400, "d": 0.1234567890123456789}',
        b'{"a": "\\ud800", "b": NaN}',
        b'{"a": "caf\xc3\xa9", "b": [1.5, true, null]}',
    ],
)
def test_kept_bodies_parse_the_same_either_way(text: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _both(_json_or, text, None, monkeypatch=monkeypatch)
    assert repr(fast) == repr(slow)  # (repr: NaN != NaN, and an int must stay an int)


def test_stream_events_parse_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    events = ['{"id": 1, "n": 18446744073709551616}', '{"id": 2, "t": "x"}', "[DONE]"]
    fast, slow = _both(parsed_events, events, monkeypatch=monkeypatch)
    assert repr(fast) == repr(slow) == repr([{"id": 1, "n": 18446744073709551616}, {"id": 2, "t": "x"}])


def test_a_message_field_the_sdk_model_does_not_declare_is_kept() -> None:
    """openai before 1.52 had no `audio` field on ChatCompletionMessage: the model keeps it as an extra."""
    from openai import BaseModel

    class OldMessage(BaseModel):
        role: str
        content: Any = None

    audio = {"id": "a1", "transcript": "hello"}
    message = OldMessage(role="assistant", content=None, audio=audio)  # type: ignore[call-arg]
    assert _message(message) == {"role": "assistant", "content": None, "audio": audio}
    assert _message({"role": None, "content": "x"})["role"] is None  # as the provider sent it


def test_nothing_non_finite_is_left_in_either(monkeypatch: pytest.MonkeyPatch) -> None:
    log = {"model": "m", "metadata": {"x": [math.nan, math.inf]}}
    for data in _both(encode_log, log, 10**6, monkeypatch=monkeypatch):
        assert json.loads(data, parse_constant=lambda name: pytest.fail(name))["metadata"] == {
            "x": [None, None]
        }
    for text in _both(json_text, [{"x": math.nan}], monkeypatch=monkeypatch):
        assert text == '[{"x":null}]'
