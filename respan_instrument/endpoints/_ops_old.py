"""Per-operation extraction: pure functions from request body and SDK response to span data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from . import _semconv as sc
from ._accumulate import fields_of
from ._cost import TokenUsage


class Operation(NamedTuple):
    """What a POST to one OpenAI endpoint is, for spans and for Respan."""

    name: str  # gen_ai.operation.name
    log_type: str  # Respan's log_type


CHAT = Operation("chat", "chat")
RESPONSES = Operation("chat", "response")
EMBEDDINGS = Operation("embeddings", "embedding")
COMPLETIONS = Operation("text_completion", "completion")

# FinalRequestOptions.url (before Azure rewrites it) -> operation
OPERATIONS: Mapping[str, Operation] = {
    "/chat/completions": CHAT,
    "/responses": RESPONSES,
    "/embeddings": EMBEDDINGS,
    "/completions": COMPLETIONS,
}

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


def request_attributes(op: Operation, body: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """Span attributes known before the call: operation, provider, model, parameters."""
    model = body.get("model")
    attrs: dict[str, Any] = {
        sc.OPERATION_NAME: op.name,
        sc.PROVIDER_NAME: provider,
        sc.SYSTEM: provider,
        sc.REQUEST_MODEL: model if isinstance(model, str) else str(model),
    }
    for key, name in sc.REQUEST_PARAMETERS.items():
        value = body.get(key)
        if value is not None and isinstance(value, (int, float, str)):
            attrs[name] = value
    stop = body.get("stop")
    if stop is not None:
        attrs[sc.REQUEST_STOP_SEQUENCES] = (stop,) if isinstance(stop, str) else tuple(map(str, stop))
    if body.get("stream"):
        attrs[sc.REQUEST_STREAM] = True
    return attrs


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def usage_of(op: Operation, usage: Any) -> TokenUsage | None:
    """Token counts from an SDK usage object (typed reads, no model_dump)."""
    if usage is None:
        return None
    u = fields_of(usage)
    if op is RESPONSES:
        inp = u.get("input_tokens")
        out = u.get("output_tokens")
        in_details = u.get("input_tokens_details")
        out_details = u.get("output_tokens_details")
    else:
        inp = u.get("prompt_tokens")
        out = u.get("completion_tokens")
        in_details = u.get("prompt_tokens_details")
        out_details = u.get("completion_tokens_details")
    if not isinstance(inp, int):
        return None
    cached = in_audio = reasoning = out_audio = 0
    if in_details is not None:
        d = fields_of(in_details)
        cached = _int(d.get("cached_tokens"))
        in_audio = _int(d.get("audio_tokens"))
    if out_details is not None:
        d = fields_of(out_details)
        reasoning = _int(d.get("reasoning_tokens"))
        out_audio = _int(d.get("audio_tokens"))
    return TokenUsage(
        input_tokens=inp,
        output_tokens=_int(out),
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
        input_audio_tokens=in_audio,
        output_audio_tokens=out_audio,
    )


class Outcome(NamedTuple):
    """What the caller's thread learns from a response: span attributes and priced usage."""

    attributes: dict[str, Any]
    usage: TokenUsage | None
    model: str | None
    service_tier: str | None


def outcome(op: Operation, response: Any, span_attributes: bool = True) -> Outcome:
    """Read the few typed fields a call needs from a parsed SDK response: usage, model and
    service tier for the cost, and (when a span can show them) the response attributes."""
    fields = fields_of(response)
    model = fields.get("model")
    tier = fields.get("service_tier")
    usage = usage_of(op, fields.get("usage"))
    if not span_attributes:
        return Outcome(
            {}, usage, model if isinstance(model, str) else None, tier if isinstance(tier, str) else None
        )
    attrs: dict[str, Any] = {}
    if isinstance(model, str):
        attrs[sc.RESPONSE_MODEL] = model
    else:
        model = None
    rid = fields.get("id")
    if isinstance(rid, str):
        attrs[sc.RESPONSE_ID] = rid
    if isinstance(tier, str):
        attrs[sc.RESPONSE_SERVICE_TIER] = tier
    else:
        tier = None
    if op is RESPONSES:
        status = fields.get("status")
        if isinstance(status, str):
            attrs[sc.RESPONSE_FINISH_REASONS] = (status,)
    else:
        choices = getattr(response, "choices", None)  # a property on accumulators
        if choices:
            attrs[sc.RESPONSE_FINISH_REASONS] = tuple(str(c.finish_reason) for c in choices)
    if usage is not None:
        attrs[sc.USAGE_INPUT_TOKENS] = usage.input_tokens
        if op is not EMBEDDINGS:
            attrs[sc.USAGE_OUTPUT_TOKENS] = usage.output_tokens
        if usage.cached_input_tokens:
            attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_input_tokens
        if usage.reasoning_tokens:
            attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    return Outcome(attrs, usage, model, tier)
