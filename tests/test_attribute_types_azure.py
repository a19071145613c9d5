"""attributes() values keep their JSON types on the way to Respan, the span and the gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import RESPAN_KEY, delivered

import respan_instrument

MSG = [{"role": "user", "content": "typed"}]
TYPED = {
    "n": 3,
    "ok": True,
    "off": False,
    "ratio": 0.25,
    "plan": "pro",
    "tags": ["a", 2, None],
    "limits": {"rpm": 60, "burst": False},
    "gone": None,
}


def _typed_scope() -> respan_instrument.attributes:
    return respan_instrument.attributes(
        metadata=TYPED,
        properties={"tier": 2, "beta": True},
        customer_identifier=42,
        customer_params={"customer_identifier": 42, "name": "Ann"},
    )


def _assert_typed(log: dict[str, Any]) -> None:
    assert log["metadata"] == TYPED
    # == alone would let "3" / 1 / 1.0 pass for 3 / True
    assert [type(log["metadata"][k]) for k in ("n", "ok", "off", "ratio")] == [int, bool, bool, float]
    assert type(log["metadata"]["limits"]["rpm"]) is int and log["metadata"]["limits"]["burst"] is False
    assert log["properties"] == {"tier": 2, "beta": True} and log["properties"]["beta"] is True
    # identifiers are strings in a log: an int is taken as its text
    assert log["customer_identifier"] == "42"
    assert log["customer_params"] == {"customer_identifier": "42", "name": "Ann"}


def test_numbers_and_bools_stay_as_given(instrumented, client) -> None:
    """Scalars only, as most apps tag calls: the log, like log()'s, carries 3 and True, not "3"."""
    with respan_instrument.attributes(metadata={"n": 3, "ok": True, "ratio": 0.5}, properties={"tier": 2}):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    (log,) = delivered(instrumented)
    assert log["metadata"] == {"n": 3, "ok": True, "ratio": 0.5} and log["metadata"]["ok"] is True
    assert log["properties"] == {"tier": 2}


def test_gateway_body_keeps_scalar_types(stub, collector) -> None:
    stub.clear()
    base = stub.url + "/gateway"
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=base)
    try:
        client = respan_instrument.gateway_client(api_key=RESPAN_KEY, base_url=base, max_retries=0)
        with respan_instrument.attributes(metadata={"n": 3, "ok": True}):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    finally:
        respan_instrument.uninstrument()
    assert stub.requests[-1].body["metadata"] == {"n": 3, "ok": True}
    assert stub.requests[-1].body["metadata"]["ok"] is True


def test_attributes_keep_json_types_sync(instrumented, client) -> None:
    with _typed_scope():
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    (log,) = delivered(instrumented)
    _assert_typed(log)


def test_attributes_keep_json_types_async(instrumented, aclient) -> None:
    async def main() -> None:
        async with aclient() as c:
            with _typed_scope():
                stream = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
                async for _ in stream:
                    pass

    asyncio.run(main())
    (log,) = delivered(instrumented)
    _assert_typed(log)


def test_nesting_and_defaults_keep_types_and_the_value_given(collector, stub, client) -> None:
    stub.clear()
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", attributes={"metadata": {"env": "prod", "shard": 7}}
    )
    try:
        tags = ["x"]
        scope = respan_instrument.attributes(metadata={"tags": tags, "retries": 0})
        tags.append("added after attributes()")  # the caller's list is theirs; we logged a copy
        with scope, respan_instrument.attributes(metadata={"retries": 2, "cached": True}):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    assert log["metadata"] == {"env": "prod", "shard": 7, "tags": ["x"], "retries": 2, "cached": True}
    assert tags == ["x", "added after attributes()"]


def test_span_attributes_get_typed_values(traced, client) -> None:
    _, spans = traced
    with _typed_scope():
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert respan_instrument.flush(5)
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes)
    assert attrs["respan.metadata.n"] == 3 and type(attrs["respan.metadata.n"]) is int
    assert attrs["respan.metadata.ok"] is True and attrs["respan.metadata.off"] is False
    assert attrs["respan.metadata.ratio"] == 0.25
    assert json.loads(attrs["respan.metadata.tags"]) == ["a", 2, None]
    assert json.loads(attrs["respan.metadata.limits"]) == {"rpm": 60, "burst": False}
    assert "respan.metadata.gone" not in attrs  # OpenTelemetry takes no None
    assert attrs["respan.properties.tier"] == 2 and attrs["respan.customer_identifier"] == "42"


def test_gateway_body_keeps_json_types(stub, collector, sdk_spans) -> None:
    stub.clear()
    provider, _ = sdk_spans
    base = stub.url + "/gateway"
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=base, tracer_provider=provider)
    try:
        client = respan_instrument.gateway_client(api_key=RESPAN_KEY, base_url=base, max_retries=0)
        with _typed_scope():
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert respan_instrument.flush(5)
    finally:
        respan_instrument.uninstrument()
    body = stub.requests[-1].body
    assert stub.requests[-1].path.startswith("/gateway/chat/completions")
    _assert_typed(body)


@pytest.mark.parametrize(
    "values",
    [
        {"metadata": {"k": object()}},
        {"metadata": {"k": {1, 2}}},
        {"metadata": {"k": {"deep": [b"bytes"]}}},
        {"metadata": {"k": {1: "int key"}}},
        {"properties": {"k": object()}},
        {"customer_params": {"name": {"first": "Ann"}}},
        {"customer_identifier": True},
    ],
)
def test_non_json_values_are_refused_at_attributes(values) -> None:
    with pytest.raises(TypeError):
        respan_instrument.attributes(**values)
