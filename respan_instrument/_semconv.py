"""Span attribute names in one place: OpenTelemetry GenAI conventions, Respan's own names, and
how `attributes()` values become span attributes.

Respan's OTLP ingest (`/v2/traces`) reads the `respan.*` names its own tracing SDK sends
(`respan_sdk.constants.span_attributes`): customer, thread, trace group, custom identifier,
`respan.metadata.<key>` and `respan.entity.log_type`. Its exporters read the cost from
`gen_ai.usage.cost` and the time to first token from `gen_ai.usage.ttft` (seconds); the
conventions' `gen_ai.response.time_to_first_chunk` is sent beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _g

OPERATION_NAME = _g.GEN_AI_OPERATION_NAME
SYSTEM = _g.GEN_AI_SYSTEM
PROVIDER_NAME = _g.GEN_AI_PROVIDER_NAME
CONVERSATION_ID = _g.GEN_AI_CONVERSATION_ID
REQUEST_MODEL = _g.GEN_AI_REQUEST_MODEL
REQUEST_TEMPERATURE = _g.GEN_AI_REQUEST_TEMPERATURE
REQUEST_TOP_P = _g.GEN_AI_REQUEST_TOP_P
REQUEST_MAX_TOKENS = _g.GEN_AI_REQUEST_MAX_TOKENS
REQUEST_FREQUENCY_PENALTY = _g.GEN_AI_REQUEST_FREQUENCY_PENALTY
REQUEST_PRESENCE_PENALTY = _g.GEN_AI_REQUEST_PRESENCE_PENALTY
REQUEST_STOP_SEQUENCES = _g.GEN_AI_REQUEST_STOP_SEQUENCES
REQUEST_SEED = _g.GEN_AI_REQUEST_SEED
REQUEST_CHOICE_COUNT = _g.GEN_AI_REQUEST_CHOICE_COUNT
REQUEST_STREAM = _g.GEN_AI_REQUEST_STREAM
REQUEST_SERVICE_TIER = _g.GEN_AI_OPENAI_REQUEST_SERVICE_TIER
RESPONSE_MODEL = _g.GEN_AI_RESPONSE_MODEL
RESPONSE_ID = _g.GEN_AI_RESPONSE_ID
RESPONSE_FINISH_REASONS = _g.GEN_AI_RESPONSE_FINISH_REASONS
RESPONSE_SERVICE_TIER = _g.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER
RESPONSE_TIME_TO_FIRST_CHUNK = _g.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
USAGE_INPUT_TOKENS = _g.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS = _g.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS = _g.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION_INPUT_TOKENS = _g.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS = _g.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
SYSTEM_INSTRUCTIONS = _g.GEN_AI_SYSTEM_INSTRUCTIONS
INPUT_MESSAGES = _g.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES = _g.GEN_AI_OUTPUT_MESSAGES
ERROR_TYPE = "error.type"
AGENT_NAME = _g.GEN_AI_AGENT_NAME
TOOL_NAME = _g.GEN_AI_TOOL_NAME
TOOL_CALL_ARGUMENTS = _g.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_CALL_RESULT = _g.GEN_AI_TOOL_CALL_RESULT

# Respan's names (not in the conventions)
COST = "gen_ai.usage.cost"  # USD
COST_LINE_PREFIX = COST + "."  # USD of one line of the bill: `gen_ai.usage.cost.web_search`
COST_UNPRICED = "respan.cost.unpriced"  # the names of the lines no price source prices
TTFT = "gen_ai.usage.ttft"  # seconds
LOG_TYPE = "respan.entity.log_type"
CUSTOMER_PREFIX = "respan.customer_params."
CUSTOMER_ID = CUSTOMER_PREFIX + "customer_identifier"
THREAD_ID = "respan.threads.thread_identifier"
TRACE_GROUP_ID = "respan.trace.trace_group_identifier"
CUSTOM_ID = "respan.span_params.custom_identifier"
METADATA_PREFIX = "respan.metadata."
GATEWAY_LOG_ID = "respan.gateway.log_id"
SPAN_TOOLS = "respan.span.tools"  # an agent's tools (JSON list), as Respan's Agents exporter names it
SPAN_HANDOFFS = "respan.span.handoffs"
ATTRIBUTE_PREFIX = "respan."

# the indexed names Respan's OTLP page lists (sent in OTLP export only)
LEGACY_PROMPT = "gen_ai.prompt"  # gen_ai.prompt.{N}.role / .content
LEGACY_COMPLETION = "gen_ai.completion"  # gen_ai.completion.{N}.role / .content
LEGACY_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
LEGACY_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
LEGACY_TOTAL_TOKENS = "gen_ai.usage.total_tokens"

# request JSON key -> span attribute, for the scalar parameters users pass
REQUEST_PARAMETERS = {
    "temperature": REQUEST_TEMPERATURE,
    "top_p": REQUEST_TOP_P,
    "max_tokens": REQUEST_MAX_TOKENS,
    "max_completion_tokens": REQUEST_MAX_TOKENS,
    "max_output_tokens": REQUEST_MAX_TOKENS,
    "frequency_penalty": REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": REQUEST_PRESENCE_PENALTY,
    "seed": REQUEST_SEED,
    "n": REQUEST_CHOICE_COUNT,
    "service_tier": REQUEST_SERVICE_TIER,
}

# attributes() keys with a name of Respan's (the others keep `respan.<key>`)
SCOPE_NAMES = {
    "customer_identifier": CUSTOMER_ID,
    "thread_identifier": THREAD_ID,
    "group_identifier": TRACE_GROUP_ID,
    "custom_identifier": CUSTOM_ID,
}
_CREDENTIALS = "customer_credentials"
# attributes() keys that are no span attribute: the gateway's credentials, a call's content choice
_NOT_ATTRIBUTES = frozenset({_CREDENTIALS, "capture_content"})


def _value(item: Any) -> Any:
    """A span attribute holds a str, bool, int or float: those keep their type; anything else
    is shown as its JSON text."""
    return item if isinstance(item, (str, int, float)) else json.dumps(item, default=str)


def scope_attributes(scope: Mapping[str, Any]) -> dict[str, Any]:
    """`attributes()` values as span attributes, in the names Respan's ingest reads; never the
    credentials, and no None (OpenTelemetry rejects it with a warning)."""
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if key in _NOT_ATTRIBUTES or value is None:
            continue
        name = SCOPE_NAMES.get(key)
        if name is not None:
            out[name] = value
            if key == "thread_identifier":
                out[CONVERSATION_ID] = value
        elif isinstance(value, Mapping):
            prefix = CUSTOMER_PREFIX if key == "customer_params" else f"{ATTRIBUTE_PREFIX}{key}."
            for sub, item in value.items():
                if item is not None:
                    out.setdefault(prefix + str(sub), _value(item))
        else:
            out[ATTRIBUTE_PREFIX + key] = value
    return out


def cost_attributes(cost: Any, breakdown: Any, unpriced: Any) -> dict[str, Any]:
    """A call's cost as span attributes: the total, each line of its breakdown, and the names of
    the lines that could not be priced."""
    out: dict[str, Any] = {}
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        out[COST] = float(cost)
    if isinstance(breakdown, Mapping):
        for line, usd in breakdown.items():
            if isinstance(usd, (int, float)) and not isinstance(usd, bool):
                out[COST_LINE_PREFIX + str(line)] = float(usd)
    if isinstance(unpriced, Mapping) and unpriced:
        out[COST_UNPRICED] = tuple(sorted(map(str, unpriced)))
    return out
