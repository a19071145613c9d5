"""Any content is deliverable: lone surrogates and non-finite numbers in a request, a response,
attributes() or log() still give one strict-JSON log, and our log lines never quote content."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import RESPAN_KEY, delivered

import respan_instrument
from respan_instrument import _errors
from respan_instrument.local import Collector, OpenAIStub
from respan_instrument.record import fastjson

SECRET = "SECRET-7f3a"  # in every piece of odd content: must never show on our logger
SURROGATE_TEXT = f"{SECRET} \ud800 tail"  # a lone high surrogate, as some decoders leave them
CLEANED_TEXT = f"{SECRET} \ufffd tail"
MODEL = "gpt-4o-mini"


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def strict_bodies(collector: Collector) -> list[Any]:
    """Every body the collector got, parsed the strict way; none of them refused."""
    assert [r.status for r in collector.requests if r.status not in (200, 201)] == []
    return [json.loads(r.body.decode("utf-8"), parse_constant=_no_constant) for r in collector.requests]


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    assert SECRET not in caplog.text
    assert all(SECRET not in record.getMessage() for record in caplog.records)


@pytest.fixture(autouse=True, params=["orjson", "stdlib"])
def json_library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every case both ways: with orjson (the worker asks it first) and where it is not
    installed (PyPy), the standard library alone. The logs must not differ."""
    if request.param == "stdlib":
        if "instrumented" not in request.fixturenames and "collector" not in request.fixturenames:
            pytest.skip("delivers nothing: no JSON to compare")
        monkeypatch.setattr(fastjson, "_orjson", None)
    return str(request.param)


@pytest.fixture()
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="respan_instrument")
    return caplog


@pytest.fixture()
def odd_reply(stub: OpenAIStub) -> Iterator[None]:
    stub.reply = f"answer {SURROGATE_TEXT}"
    yield
    stub.reply = None


def _call(client: Any, **kwargs: Any) -> BaseException | None:
    """Make the call; the SDK itself may refuse to encode odd content, which is its answer."""
    params: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **kwargs}
    try:
        client.chat.completions.create(**params)
    except (ValueError, TypeError) as exc:  # the SDK's own JSON encoding, before any request
        return exc
    return None


TOOL_HISTORY = [
    {"role": "user", "content": "look it up"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "find", "arguments": SURROGATE_TEXT}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "found"},
]


def test_surrogate_in_a_request_message(instrumented: Collector, client: Any, logs: Any) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": SURROGATE_TEXT}]
    _call(client, messages=messages)
    (log,) = delivered(instrumented)
    assert log["prompt_messages"][1]["content"] == CLEANED_TEXT
    assert messages[1]["content"] == SURROGATE_TEXT  # the caller's data is untouched
    assert strict_bodies(instrumented)[0]["model"] == MODEL
    assert_quiet(logs)


def test_surrogate_in_tool_call_arguments(instrumented: Collector, client: Any, logs: Any) -> None:
    _call(client, messages=TOOL_HISTORY)
    (log,) = delivered(instrumented)
    assert log["prompt_messages"][1]["tool_calls"][0]["function"]["arguments"] == CLEANED_TEXT
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_surrogate_in_a_stop_sequence_with_the_apps_spans(
    collector: Collector, client: Any, traced: Any, logs: Any
) -> None:
    _provider, exporter = traced
    _call(client, stop=[SURROGATE_TEXT])
    (log,) = delivered(collector)
    assert log["stop"] == [CLEANED_TEXT]
    (span,) = exporter.get_finished_spans()
    assert span.name == f"chat {MODEL}"
    strict_bodies(collector)
    assert_quiet(logs)


def test_surrogate_in_the_response(instrumented: Collector, client: Any, odd_reply: None, logs: Any) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == f"answer {SURROGATE_TEXT}"  # the user sees it as sent
    (log,) = delivered(instrumented)
    assert log["status"] == "success"
    assert log["completion_message"]["content"] == f"answer {CLEANED_TEXT}"
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_surrogate_in_a_stream(instrumented: Collector, client: Any, odd_reply: None, logs: Any) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"answer {SURROGATE_TEXT}"
    (log,) = delivered(instrumented)
    assert log["stream"] is True and log["status"] == "success"
    assert log["completion_message"]["content"] == f"answer {CLEANED_TEXT}"
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_surrogate_in_an_async_response(
    instrumented: Collector, aclient: Any, odd_reply: None, logs: Any
) -> None:
    async def main() -> str | None:
        async with aclient() as c:
            reply = await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
            return reply.choices[0].message.content  # type: ignore[no-any-return]

    assert asyncio.run(main()) == f"answer {SURROGATE_TEXT}"
    (log,) = delivered(instrumented)
    assert log["completion_message"]["content"] == f"answer {CLEANED_TEXT}"
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_surrogate_in_a_responses_stream(
    instrumented: Collector, client: Any, odd_reply: None, logs: Any
) -> None:
    with client.responses.stream(model=MODEL, input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == f"answer {SURROGATE_TEXT}"
    (log,) = delivered(instrumented)
    assert log["log_type"] == "response" and log["status"] == "success"
    assert log["output"][0]["content"][0]["text"] == f"answer {CLEANED_TEXT}"
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_infinite_temperature(instrumented: Collector, client: Any, logs: Any) -> None:
    error = _call(client, temperature=float("inf"))
    (log,) = delivered(instrumented)
    assert "temperature" in log and log["temperature"] is None
    assert log["status"] == ("error" if error is not None else "success")
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_non_finite_number_in_a_tool_schema(instrumented: Collector, client: Any, logs: Any) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number", "maximum": float("nan")}}}
    tools = [{"type": "function", "function": {"name": "find", "parameters": schema}}]
    _call(client, tools=tools)
    (log,) = delivered(instrumented)
    assert log["tools"][0]["function"]["parameters"]["properties"]["x"] == {"type": "number", "maximum": None}
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_odd_values_in_attributes(instrumented: Collector, client: Any, logs: Any) -> None:
    metadata = {"score": float("nan"), "note": SURROGATE_TEXT}
    with respan_instrument.attributes(custom_identifier="odd-attrs", metadata=metadata):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    (log,) = delivered(instrumented)
    assert log["custom_identifier"] == "odd-attrs"
    assert log["metadata"]["note"] == CLEANED_TEXT
    assert log["metadata"]["score"] is None
    strict_bodies(instrumented)
    assert_quiet(logs)


class _Tier(enum.Enum):
    GOLD = "gold"


def test_objects_json_has_no_spelling_for_are_their_text(instrumented: Collector) -> None:
    when = datetime.datetime(2026, 12, 6, 3, 4, 5, tzinfo=datetime.timezone.utc)
    ident = uuid.UUID(int=7)
    metadata = {"when": when, "day": when.date(), "id": ident, "big": 2**70, 1: "int key"}
    respan_instrument.log(model=MODEL, prompt_messages=[{"role": "user", "content": "hi"}], metadata=metadata)
    # alone in its log: nothing else in it would make orjson decline
    respan_instrument.log(
        model=MODEL, prompt_messages=[{"role": "user", "content": "hi"}], metadata={"tier": _Tier.GOLD}
    )
    first, second = delivered(instrumented, 2)
    assert first["metadata"] == {
        "when": str(when),
        "day": str(when.date()),
        "id": str(ident),
        "big": 2**70,
        "1": "int key",
    }
    assert second["metadata"] == {
        "tier": "_Tier.GOLD"
    }  # a log() dict is spelled as the standard library spells it
    strict_bodies(instrumented)


BIG = 123456789012345678901234567891  # past 64 bits: a JSON reader that makes it a float loses digits


def test_integers_past_64_bits_keep_every_digit(instrumented: Collector, client: Any) -> None:
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi", "n_id": BIG}], seed=BIG, max_tokens=-(2**64)
    )
    (log,) = delivered(instrumented)
    assert log["seed"] == BIG and type(log["seed"]) is int
    assert log["prompt_messages"][0]["n_id"] == BIG
    assert log["max_tokens"] == -(2**64)


def test_odd_content_in_log(instrumented: Collector, logs: Any) -> None:
    respan_instrument.log(
        model=MODEL,
        prompt_messages=[{"role": "user", "content": SURROGATE_TEXT}],
        temperature=float("-inf"),
        metadata={"score": float("nan"), SURROGATE_TEXT: 1},
    )
    (log,) = delivered(instrumented)
    assert log["prompt_messages"] == [{"role": "user", "content": CLEANED_TEXT}]
    assert log["temperature"] is None
    assert log["metadata"] == {"score": None, CLEANED_TEXT: 1}
    strict_bodies(instrumented)
    assert_quiet(logs)


def test_odd_logs_do_not_cost_their_batch(instrumented: Collector, client: Any, logs: Any) -> None:
    """Plain and odd logs sent together in one bulk request: all of them arrive."""
    instrumented.set_outage(True)
    for i in range(3):
        _call(client, messages=[{"role": "user", "content": f"plain {i}"}])
        _call(client, messages=[{"role": "user", "content": SURROGATE_TEXT}], temperature=float("nan"))
    instrumented.set_outage(False)
    received = delivered(instrumented, 6)
    contents = sorted(log["prompt_messages"][0]["content"] for log in received)
    assert contents == [CLEANED_TEXT] * 3 + [f"plain {i}" for i in range(3)]
    accepted = [json.loads(r.body) for r in instrumented.requests if r.status == 200]
    assert any(len(body.get("logs", ())) > 1 for body in accepted), "not sent in one bulk request"
    assert all(r.status in (200, 201, 503) for r in instrumented.requests)
    assert_quiet(logs)


def test_internal_errors_name_their_type_and_place_not_their_message(logs: Any) -> None:
    def parse(text: str) -> None:
        text.encode("ascii")  # an encode error's message and object carry the text

    try:
        parse(f"prompt: {SURROGATE_TEXT}")
    except UnicodeEncodeError as exc:
        _errors.report("checking how internal errors are told", exc)
    (record,) = [r for r in logs.records if "checking how internal errors" in r.getMessage()]
    message = record.getMessage()
    assert "UnicodeEncodeError" in message and "in parse" in message and "test_odd_content.py" in message
    assert record.exc_info is None
    assert_quiet(logs)
    assert _errors.failures == ["checking how internal errors are told: UnicodeEncodeError"]
    del _errors.failures[:]  # provoked on purpose: the suite fails on any other


def test_strict_mode_still_raises_contained_errors(logs: Any) -> None:
    with pytest.raises(KeyError), _errors.contained("a strict-mode check"):
        raise KeyError(SECRET)
    assert "a strict-mode check" in logs.text and "KeyError" in logs.text
    assert_quiet(logs)
    assert _errors.failures == ["a strict-mode check: KeyError"]
    del _errors.failures[:]  # provoked on purpose: the suite fails on any other


def test_odd_attributes_sent_to_the_gateway(stub: OpenAIStub, collector: Collector, logs: Any) -> None:
    """attributes() values travel in a gateway call's own body: they must not break the call."""
    base = stub.url + "/gateway"
    stub.clear()
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=base)
    try:
        client = respan_instrument.gateway_client(api_key=RESPAN_KEY, base_url=base, max_retries=0)
        metadata = {"score": float("inf"), "note": SURROGATE_TEXT}
        with respan_instrument.attributes(customer_identifier=SURROGATE_TEXT, metadata=metadata):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert respan_instrument.flush(5)
    finally:
        respan_instrument.uninstrument()
    (request,) = [r for r in stub.requests if r.path.startswith("/gateway/chat/completions")]
    assert request.body["metadata"] == {"score": None, "note": CLEANED_TEXT}
    assert request.body["customer_identifier"] == CLEANED_TEXT
    assert metadata == {"score": float("inf"), "note": SURROGATE_TEXT}
    assert_quiet(logs)
