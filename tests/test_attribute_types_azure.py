"""attributes() values keep their JSON types on the way to Respan, the span and the gateway; an
Azure client is Azure (provider, price, stream usage) whatever its endpoint's host name."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest
from conftest import OPENAI_KEY, RESPAN_KEY, delivered

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
        api_key=RESPAN_KEY,
        base_url=collector.url + "/api",
        attributes={"metadata": {"env": "prod", "shard": 7}},
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
    assert (
        attrs["respan.properties.tier"] == 2 and attrs["respan.customer_params.customer_identifier"] == "42"
    )


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


# -- Azure behind a host name that is not Azure's ----------------------------------------

API_VERSION = "2024-06-01"
# genai-prices prices davinci on Azure at a twentieth of OpenAI's price: the cost tells them apart
MODEL = "davinci"


def _azure_price(log: dict[str, Any]) -> float:
    from genai_prices import Usage, calc_price

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        price = calc_price(
            Usage(input_tokens=log["prompt_tokens"], output_tokens=log["completion_tokens"]),
            MODEL,
            provider_id="azure",
        )
    assert price.provider.id == "azure"
    return float(price.total_price)


def test_azure_client_on_a_custom_host_is_azure(traced, collector, stub) -> None:
    import openai

    _, spans = traced
    stub.clear()
    # the stub's 127.0.0.1 stands for an API Management or private endpoint host name
    azure = openai.AzureOpenAI(
        azure_endpoint=stub.url, api_version=API_VERSION, api_key=OPENAI_KEY, max_retries=0
    )
    response = azure.chat.completions.create(model=MODEL, messages=MSG)
    (log,) = delivered(collector)
    assert stub.requests[-1].path == f"/openai/deployments/{MODEL}/chat/completions"
    assert log["model"] == response.model == MODEL
    assert log["cost"] == pytest.approx(_azure_price(log))
    (span,) = spans.get_finished_spans()
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert span.attributes["gen_ai.system"] == "azure.ai.openai"
    assert span.attributes["gen_ai.usage.cost"] == pytest.approx(_azure_price(log))


def test_azure_stream_gets_usage_and_azure_price(instrumented, stub) -> None:
    import openai

    azure = openai.AzureOpenAI(
        azure_endpoint=stub.url,
        azure_deployment="dep-1",
        api_version=API_VERSION,
        api_key=OPENAI_KEY,
        max_retries=0,
    )
    kwargs: dict[str, Any] = {"model": MODEL, "messages": MSG, "stream": True}
    chunks = list(azure.chat.completions.create(**kwargs))
    assert kwargs == {"model": MODEL, "messages": MSG, "stream": True}
    assert stub.requests[-1].path == "/openai/deployments/dep-1/chat/completions"
    assert stub.requests[-1].body["stream_options"] == {"include_usage": True}
    assert chunks and all(chunk.choices for chunk in chunks)  # the usage-only chunk stays hidden
    (log,) = delivered(instrumented)
    assert log["stream"] is True
    assert log["prompt_tokens"] > 0 and log["completion_tokens"] > 0
    assert log["cost"] == pytest.approx(_azure_price(log))


def test_async_azure_client_on_a_custom_host(instrumented, stub) -> None:
    import openai

    async def main() -> list[Any]:
        async with openai.AsyncAzureOpenAI(
            azure_endpoint=stub.url, api_version=API_VERSION, api_key=OPENAI_KEY, max_retries=0
        ) as azure:
            stream = await azure.chat.completions.create(model=MODEL, messages=MSG, stream=True)
            return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    assert stub.requests[-1].body["stream_options"] == {"include_usage": True}
    assert chunks and all(chunk.choices for chunk in chunks)
    (log,) = delivered(instrumented)
    assert log["prompt_tokens"] > 0
    assert log["cost"] == pytest.approx(_azure_price(log))


def test_plain_client_on_the_same_url_stays_openai(traced, collector, stub, client) -> None:
    """The class decides, not the URL: a plain client given the Azure client's very URL object
    is not Azure, and its stream is left as sent on a host not known to accept include_usage."""
    import openai

    _, spans = traced
    stub.clear()
    azure = openai.AzureOpenAI(
        azure_endpoint=stub.url, api_version=API_VERSION, api_key=OPENAI_KEY, max_retries=0
    )
    client.base_url = azure.base_url
    assert client.base_url is azure.base_url
    azure.chat.completions.create(model=MODEL, messages=MSG)
    for _ in client.chat.completions.create(model=MODEL, messages=MSG, stream=True):
        pass
    azure.chat.completions.create(model=MODEL, messages=MSG)
    assert "stream_options" not in stub.requests[1].body
    delivered(collector, 3)
    providers = [s.attributes["gen_ai.provider.name"] for s in spans.get_finished_spans()]
    assert providers == ["azure.ai.openai", "openai", "azure.ai.openai"]


@pytest.mark.parametrize(
    ("base_url", "provider", "injects"),
    [
        ("https://contoso.azure-api.net/openai/", "azure.ai.openai", True),  # API Management
        ("https://res.openai.azure.com/openai/", "azure.ai.openai", True),
        ("https://llm-gateway.contoso.com/openai/", "openai", False),  # a plain client: host only
        ("https://api.openai.com/v1/", "openai", True),
    ],
)
def test_hosts_for_plain_clients(base_url, provider, injects) -> None:
    from respan_instrument.endpoints.providers import price_provider as provider_from_base_url
    from respan_instrument.endpoints.providers import provider_name, usage_injectable

    assert provider_name(base_url) == provider and usage_injectable(base_url) is injects
    assert (provider_from_base_url(base_url) == "azure") is (provider == "azure.ai.openai")
