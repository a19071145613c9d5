"""What a call keeps of its request and response for the worker, read from the SDK's objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..record.call_record import CallRecord


def kept(record: CallRecord, result: Any, http: Any) -> None:
    """Keep what the log needs of a response until the worker builds it.

    The response body as received (bytes) when there is one: the parsed model is a tree of some
    25 objects the garbage collector would track for as long as the log waits, and every full
    collection of a busy process paid for them (a cost per call benchmarks/ shows). An endpoint whose
    body the log does not need keeps its summary instead. `result` is what the SDK returned; a
    raw-response wrapper is parsed only when its body cannot be kept.
    """
    endpoint = record.endpoint
    if not endpoint.keeps_body:
        record.response = endpoint.summary(None if result is None else parsed_result(result), http)
        return
    if result is None:
        return
    if http is not None:  # None for streams
        try:
            body = http.content
        except Exception:  # noqa: BLE001 - not read (or not httpx): keep the model
            record.response = parsed_result(result)
            return
        if type(body) is bytes and body[:1] == b"{":
            record.response_json = body
            return
    record.response = parsed_result(result)


def sent(http: Any, body: Mapping[str, Any]) -> bytes | None:
    """The request body as sent, when it is the JSON of `body` (nothing of ours added)."""
    try:
        content = http.request.content
    except Exception:  # noqa: BLE001 - a streamed or unread body: keep the dict
        return None
    return content if type(content) is bytes and content[:1] == b"{" else None


def injected_usage_chunk(chunk: Any) -> bool:
    """The usage-only chunk that `include_usage` adds: no choices, usage set."""
    return not chunk.choices and chunk.usage is not None


_raw_types: dict[type, bool] = {}


def is_raw(result: Any) -> bool:
    """Is this a `with_raw_response` wrapper (LegacyAPIResponse / APIResponse)? Cached per type."""
    kind = type(result)
    raw = _raw_types.get(kind)
    if raw is None:
        raw = _raw_types[kind] = any(
            base.__module__ in ("openai._legacy_response", "openai._response") and hasattr(base, "parse")
            for base in kind.__mro__
        )
    return raw


def parsed_result(result: Any) -> Any:
    """The SDK model behind a `with_raw_response` result (parse() is cached by the SDK)."""
    if is_raw(result):
        try:
            return result.parse()
        except Exception:  # noqa: BLE001 - the user's own parse() raises the same; log what we have
            return None
    return result
