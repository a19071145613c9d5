"""The host table (endpoints/providers.py): one row per host gives a client's provider name, its
price provider and whether it takes `stream_options.include_usage`; a row matches its host and
its subdomains, never a host that merely ends with the same letters."""

from __future__ import annotations

import pytest

from respan_instrument.endpoints.providers import HOSTS, price_provider, provider_name, usage_injectable


@pytest.mark.parametrize(
    ("url", "name", "prices", "injects"),
    [
        ("https://api.openai.com/v1", "openai", "openai", True),
        ("https://eu.api.openai.com/v1", "openai", "openai", True),
        ("https://evilapi.openai.com/v1", "openai", None, False),  # the default, not the row
        ("https://res.openai.azure.com/openai/", "azure.ai.openai", "azure", True),
        ("https://res.services.ai.azure.com/models", "azure.ai.openai", "azure", False),
        ("https://contoso.azure-api.net/openai/", "azure.ai.openai", "azure", True),
        ("https://api.respan.ai/api", "respan", None, True),
        ("https://notrespan.ai/api", "openai", None, False),
        ("https://api.groq.com/openai/v1", "groq", "groq", False),
        ("https://api.mistral.ai/v1", "mistral_ai", "mistral", False),
        ("https://api.openrouter.ai/api/v1", "openrouter", "openrouter", False),
        ("https://api.cerebras.ai/v1", "openai", "cerebras", False),  # no name of its own in the table
        ("https://router.huggingface.co/groq/v1", "openai", "huggingface_groq", False),
        ("http://localhost:8000/v1", "openai", None, False),
        ("HTTPS://API.OPENAI.COM./v1", "openai", "openai", True),
    ],
)
def test_one_row_answers_all_three(url, name, prices, injects) -> None:
    assert provider_name(url) == name
    assert price_provider(url) == prices
    assert usage_injectable(url) is injects


def test_rows_are_unique_and_say_something() -> None:
    hosts = [row.host for row in HOSTS]
    assert len(hosts) == len(set(hosts))
    for row in HOSTS:
        assert row.host == row.host.lower().strip(".") and "/" not in row.host
        assert row.name or row.prices or row.injects_usage, row
        # a row shadowed by an earlier one (its host or a parent domain of it) would never match
        assert all(not (row.host == h or row.host.endswith("." + h)) for h in hosts[: hosts.index(row.host)])
