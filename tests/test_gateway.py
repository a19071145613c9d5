"""Gateway mode: span kept, no request log of ours, attributes and credentials in the body only."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from conftest import RESPAN_KEY

import respan_instrument

PROVIDER_KEY = "sk-provider-secret-789"
MSG = [{"role": "user", "content": "via gateway"}]


@pytest.fixture()
def gateway(stub, collector, sdk_spans) -> Any:
    """Instrumented with RESPAN_BASE_URL at the stub's /gateway (the fake Respan gateway)."""
    stub.clear()
    provider, spans = sdk_spans
    base = stub.url + "/gateway"
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=base, tracer_provider=provider)
    yield base, spans
    respan_instrument.uninstrument()


def test_gateway_call_records_span_not_log(gateway, stub, caplog) -> None:
    base, spans = gateway
    caplog.set_level(logging.DEBUG, logger="respan_instrument")
    client = respan_instrument.gateway_client(
        api_key=RESPAN_KEY,
        base_url=base,
        credentials={"openai": {"api_key": PROVIDER_KEY}},
        fallback_models=["gpt-4o"],
        max_retries=0,
    )
    extra = {"metadata": {"from": "extra_body"}}
    with respan_instrument.attributes(
        customer_identifier="cust-1", thread_identifier="t-1", metadata={"plan": "pro"}
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, extra_body=extra)
    assert extra == {"metadata": {"from": "extra_body"}}
    assert respan_instrument.flush(5)
    body = stub.requests[-1].body
    assert stub.requests[-1].path.startswith("/gateway/chat/completions")
    assert body["customer_identifier"] == "cust-1" and body["thread_identifier"] == "t-1"
    assert body["metadata"] == {"from": "extra_body"}  # the caller's explicit extra_body wins
    assert body["customer_credentials"] == {"openai": {"api_key": PROVIDER_KEY}}
    assert body["fallback_models"] == ["gpt-4o"]
    assert stub.requests[-1].headers["authorization"] == f"Bearer {RESPAN_KEY}"
    # no request log of our own anywhere
    assert not any("request-logs" in r.path for r in stub.requests)
    (span,) = spans.get_finished_spans()
    assert span.attributes["respan.gateway.log_id"].startswith("log_")
    assert span.attributes["respan.customer_params.customer_identifier"] == "cust-1"
    dumped = json.dumps(dict(span.attributes)) + caplog.text
    assert PROVIDER_KEY not in dumped and RESPAN_KEY not in dumped


def test_credentials_from_attributes_and_weighted_keys(gateway, stub) -> None:
    base, spans = gateway
    client = respan_instrument.gateway_client(api_key=RESPAN_KEY, base_url=base, max_retries=0)
    weighted = {
        "openai": [
            {"weight": 1, "credentials": {"api_key": "k1"}},
            {"weight": 2, "credentials": {"api_key": "k2"}},
        ]
    }
    with respan_instrument.attributes(customer_credentials=weighted):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert stub.requests[-1].body["customer_credentials"] == weighted
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert "customer_credentials" not in stub.requests[-1].body


def test_gateway_stream_and_async(gateway, stub) -> None:
    base, spans = gateway

    async def main() -> None:
        async with respan_instrument.async_gateway_client(
            api_key=RESPAN_KEY, base_url=base, credentials={"openai": "sk-short"}, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
            async for _ in stream:
                pass

    asyncio.run(main())
    body = stub.requests[-1].body
    assert body["customer_credentials"] == {"openai": {"api_key": "sk-short"}}
    assert body["stream_options"] == {"include_usage": True}  # the gateway accepts it
    (span,) = spans.get_finished_spans()
    assert span.attributes["respan.gateway.log_id"].startswith("log_")
    assert span.attributes["gen_ai.usage.input_tokens"] > 0


def test_gateway_client_survives_with_options(gateway, stub) -> None:
    base, _ = gateway
    client = respan_instrument.gateway_client(
        api_key=RESPAN_KEY, base_url=base, credentials={"openai": {"api_key": "k"}}
    )
    client.with_options(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert stub.requests[-1].body["customer_credentials"] == {"openai": {"api_key": "k"}}


@pytest.mark.parametrize(
    "credentials",
    [
        {"openai": {"api_key": ""}},
        {"openai": [{"weight": 0, "credentials": {"api_key": "k"}}]},
        {"openai": []},
    ],
)
def test_bad_credentials_rejected(credentials) -> None:
    with pytest.raises((TypeError, ValueError)):
        respan_instrument.gateway_client(api_key="k", credentials=credentials)
    with pytest.raises((TypeError, ValueError)):
        respan_instrument.attributes(customer_credentials=credentials)


def test_gateway_client_needs_a_key(monkeypatch) -> None:
    monkeypatch.delenv("RESPAN_API_KEY", raising=False)
    with pytest.raises(ValueError, match="RESPAN_API_KEY"):
        respan_instrument.gateway_client()


def test_gateway_client_is_a_real_openai_client() -> None:
    import openai

    assert isinstance(respan_instrument.gateway_client(api_key="k"), openai.OpenAI)
    assert isinstance(respan_instrument.async_gateway_client(api_key="k"), openai.AsyncOpenAI)


def test_gateway_parameters_are_validated() -> None:
    with pytest.raises(TypeError):
        respan_instrument.gateway_client(api_key="k", fallback_models="gpt-4o")
    with pytest.raises(TypeError):
        respan_instrument.gateway_client(api_key="k", disable_log="yes")


def test_client_repointed_at_the_gateway_after_a_call_is_followed(gateway, stub) -> None:
    """The base URL is read on every call: setting `client.base_url` later changes what we do."""
    import openai

    base, spans = gateway
    client = openai.OpenAI(api_key="sk-direct", base_url=stub.url + "/v1", max_retries=0)
    with respan_instrument.attributes(customer_identifier="cust-moved"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # straight to the provider
        client.base_url = base  # now through Respan's gateway
        client.api_key = RESPAN_KEY
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    client.close()
    calls = [r for r in stub.requests if r.path.endswith("/chat/completions")]
    assert [r.path for r in calls] == ["/v1/chat/completions", "/gateway/chat/completions"]
    assert "customer_identifier" not in calls[0].body  # a provider is sent what the user sent
    assert calls[1].body["customer_identifier"] == "cust-moved"  # the gateway gets our fields
    first, second = spans.get_finished_spans()
    assert "respan.gateway.log_id" not in first.attributes
    assert second.attributes["respan.gateway.log_id"].startswith("log_")
