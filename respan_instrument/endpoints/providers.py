"""The host table: what a client's base URL says about the provider behind it.

One row per API host: the `gen_ai.provider.name` its spans carry, the `genai-prices` provider
id its calls are priced by, and whether it accepts `stream_options.include_usage` (which we add
to streams so they report usage). A row matches its host and any subdomain of it.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

# An Azure client (by class, whatever its host): gen_ai.provider.name and genai-prices provider
AZURE_PROVIDER = "azure.ai.openai"
AZURE_PRICE_PROVIDER = "azure"
# A client pointed at Respan's gateway (the configured base URL, whatever its host)
GATEWAY_PROVIDER = "respan"
# gen_ai.provider.name of a host that is not in the table, or has no name of its own there:
# it speaks OpenAI's API, so it is taken for OpenAI-compatible
DEFAULT_PROVIDER = "openai"


class Host(NamedTuple):
    host: str
    name: str | None  # gen_ai.provider.name (None: DEFAULT_PROVIDER)
    prices: str | None  # genai-prices provider id (None: guessed from the model id)
    injects_usage: bool = False  # known to accept stream_options.include_usage


HOSTS: tuple[Host, ...] = (
    Host("api.openai.com", "openai", "openai", True),
    Host("openai.azure.com", AZURE_PROVIDER, "azure", True),
    Host("cognitiveservices.azure.com", AZURE_PROVIDER, "azure", True),
    Host("services.ai.azure.com", AZURE_PROVIDER, "azure"),
    Host("azure-api.net", AZURE_PROVIDER, "azure", True),  # API Management in front of Azure OpenAI
    Host("respan.ai", GATEWAY_PROVIDER, None, True),
    Host("api.groq.com", "groq", "groq"),
    Host("api.together.xyz", "together", "together"),
    Host("api.together.ai", None, "together"),
    Host("api.fireworks.ai", "fireworks", "fireworks"),
    Host("api.deepseek.com", "deepseek", "deepseek"),
    Host("api.mistral.ai", "mistral_ai", "mistral"),
    Host("api.x.ai", "x_ai", "x-ai"),
    Host("openrouter.ai", "openrouter", "openrouter"),
    Host("api.perplexity.ai", "perplexity", "perplexity"),
    Host("generativelanguage.googleapis.com", "gcp.gemini", "google"),
    Host("aiplatform.googleapis.com", None, "google"),
    Host("api.anthropic.com", None, "anthropic"),
    Host("api.cerebras.ai", None, "cerebras"),
    Host("api.novita.ai", None, "novita"),
    Host("api.moonshot.ai", None, "moonshotai"),
    Host("api.moonshot.cn", None, "moonshotai"),
    Host("api.cohere.ai", None, "cohere"),
    Host("api.cohere.com", None, "cohere"),
    Host("api.z.ai", None, "zai"),
    Host("open.bigmodel.cn", None, "zhipuai"),
    Host("api.minimax.io", None, "minimax"),
    Host("api.minimaxi.com", None, "minimax"),
    Host("api.avian.io", None, "avian"),
    Host("api.arcee.ai", None, "arcee"),
    Host("inference.baseten.co", None, "baseten"),
    Host("api.doubleword.ai", None, "doubleword"),
    Host("api.githubcopilot.com", None, "github-copilot"),
    Host("oai.endpoints.kepler.ai.cloud.ovh.net", None, "ovhcloud"),
    Host("cloud.databricks.com", None, "databricks"),
    Host("azuredatabricks.net", None, "databricks"),
    Host("gcp.databricks.com", None, "databricks"),
)

# Hugging Face's router: the first path segment names the provider it routes to
HF_ROUTES = frozenset(
    {
        "cerebras",
        "fireworks-ai",
        "groq",
        "hyperbolic",
        "nebius",
        "novita",
        "nscale",
        "ovhcloud",
        "publicai",
        "sambanova",
        "together",
    }
)


def _split(url: Any) -> tuple[str, str]:
    """(lower-case host without a trailing dot, path) of a URL, a URL object or a bare host;
    ("", "") when it has none."""
    try:
        text = str(url).strip()
        if "//" not in text:
            text = "//" + text
        parts = urlsplit(text)
        return (parts.hostname or "").lower().rstrip("."), parts.path
    except (TypeError, ValueError):
        return "", ""


def _row(host: str) -> Host | None:
    if not host:
        return None
    for row in HOSTS:
        known = row.host
        if host == known or (host.endswith(known) and host[-len(known) - 1] == "."):
            return row
    return None


def provider_name(base_url: Any) -> str:
    """gen_ai.provider.name for a client's base URL; unknown hosts count as OpenAI-compatible."""
    row = _row(_split(base_url)[0])
    name = row.name if row is not None else None
    return name or DEFAULT_PROVIDER


def usage_injectable(base_url: Any) -> bool:
    """Hosts known to accept `stream_options.include_usage` (others may reject unknown fields)."""
    row = _row(_split(base_url)[0])
    return row is not None and row.injects_usage


def price_provider(url: Any) -> str | None:
    """genai-prices provider id for an OpenAI client's base URL, or None if unknown.

    None means "guess the provider from the model id" (genai-prices' model match, then OpenAI),
    which suits OpenAI-compatible proxies and gateways.
    """
    host, path = _split(url)
    row = _row(host)
    if row is not None:
        return row.prices
    if host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"):
        return "aws"
    if host == "router.huggingface.co":
        route = path.strip("/").split("/", 1)[0].lower()
        return f"huggingface_{route}" if route in HF_ROUTES else None
    if host == "api.cloudflare.com" and "/ai/" in path + "/":
        return "cloudflare"
    return None


__all__ = [
    "AZURE_PRICE_PROVIDER",
    "AZURE_PROVIDER",
    "GATEWAY_PROVIDER",
    "HOSTS",
    "Host",
    "price_provider",
    "provider_name",
    "usage_injectable",
]
