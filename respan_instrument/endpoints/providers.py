"""Hosts: gen_ai.provider.name, genai-prices provider id, include_usage (placeholder until the
prices branch lands with the one table)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .._cost import provider_from_base_url as price_provider

# An Azure client (by class, whatever its host): gen_ai.provider.name and genai-prices provider
AZURE_PROVIDER = "azure.ai.openai"
AZURE_PRICE_PROVIDER = "azure"

# host suffix -> gen_ai.provider.name
_PROVIDERS = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", AZURE_PROVIDER),
    (".cognitiveservices.azure.com", AZURE_PROVIDER),
    (".services.ai.azure.com", AZURE_PROVIDER),
    (".azure-api.net", AZURE_PROVIDER),  # API Management in front of Azure OpenAI
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.x.ai", "x_ai"),
    ("api.together.xyz", "together"),
    ("api.fireworks.ai", "fireworks"),
    ("openrouter.ai", "openrouter"),
    ("api.perplexity.ai", "perplexity"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("respan.ai", "respan"),
)


def provider_name(base_url: str) -> str:
    """gen_ai.provider.name for a client's base URL; unknown hosts count as openai-compatible."""
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, name in _PROVIDERS:
        if host == suffix.lstrip(".") or host.endswith(suffix):
            return name
    return "openai"


_USAGE_HOSTS = (
    "api.openai.com",
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".azure-api.net",
    "respan.ai",
)


def usage_injectable(base_url: str) -> bool:
    """Hosts known to accept `stream_options.include_usage` (others may reject unknown fields)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return any(host == h.lstrip(".") or host.endswith(h if h[0] == "." else "." + h) for h in _USAGE_HOSTS)


__all__ = ["price_provider"]
