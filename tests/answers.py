"""Answers shaped exactly as the SDK's own types (validated by its pydantic models, then sent as
the JSON the API would send), recorded answers from peers' cassettes, and genai-prices' own price
of a usage, computed independently of the package."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from genai_prices import Usage, calc_price

RECORDED = Path(__file__).parent / "fixtures" / "recorded"


def recorded(name: str) -> Any:
    """A recorded answer (see fixtures/recorded/SOURCES.md): JSON, or an SSE body as text."""
    text = (RECORDED / name).read_text(encoding="utf-8")
    return text if name.endswith(".sse") else json.loads(text)


def sdk(model_type: Any, data: dict[str, Any]) -> dict[str, Any]:
    """`data` checked against the SDK's model for it (raises on a field of the wrong shape), as
    the JSON the API sends. Fields an older SDK does not declare pass as extras."""
    parsed = model_type.model_validate(data)
    dumped: dict[str, Any] = parsed.model_dump(mode="json", exclude_unset=True, by_alias=True, warnings=False)
    return dumped


def response(
    model: str, output: list[dict[str, Any]], usage: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A Responses API answer (`openai.types.responses.Response`)."""
    from openai.types.responses import Response

    data = {
        "id": "resp_test_1",
        "object": "response",
        "created_at": 1765000000,
        "status": "completed",
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
        **fields,
    }
    return sdk(Response, data)


def message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def response_usage(
    inp: int, out: int, cached: int = 0, written: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    details: dict[str, Any] = {"cached_tokens": cached, "cache_write_tokens": written}
    return {
        "input_tokens": inp,
        "input_tokens_details": details,
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


def sse(events: list[dict[str, Any]]) -> str:
    """A stream's body as the API sends it: one `event:`/`data:` pair per event."""
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def genai_usd(model: str, **usage: Any) -> float:
    """genai-prices' own total for `usage` of an OpenAI model (its usage keys: input_tokens,
    cache_write_tokens, web_searches, storage_searches, audio_seconds, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(calc_price(Usage(**usage), model, provider_id="openai").total_price)
