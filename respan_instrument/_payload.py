"""Pure: a finished call's record -> the Respan request-log dict (runs on the worker)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ._context import LOG_FIELDS
from ._record import CallRecord

# request parameters copied to the log when the user passed them
REQUEST_FIELDS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "n",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "service_tier",
)
# attributes() keys that become log fields (customer_credentials never does)
SCOPE_FIELDS = LOG_FIELDS


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last second formatted, as a whole


def iso(ns: int) -> str:
    """ISO-8601 UTC with microseconds and a Z (as `datetime.isoformat()` spells it).

    The worker writes two a log: the date and time part is formatted once a second.
    """
    global _second
    sec, us = divmod((ns + 500) // 1000, 1_000_000)
    cached_sec, prefix = _second
    if sec != cached_sec:
        prefix = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (sec, prefix)
    return f"{prefix}.{us:06d}Z" if us else prefix + "Z"


def as_dict(obj: Any) -> Any:
    """An SDK model as the JSON the provider sent (unset fields left out)."""
    if obj is None or isinstance(obj, (str, int, float, bool, list, dict)):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:  # pydantic v2: parsed output of .parse() helpers must not warn
            return dump(mode="json", exclude_unset=True, by_alias=True, warnings=False)
        except TypeError:  # pydantic v1
            return obj.dict(exclude_unset=True, by_alias=True)
    return obj


def _get(obj: Any, key: str) -> Any:
    """A field of a response part, parsed JSON (dict) or SDK model alike."""
    if type(obj) is dict:
        return obj.get(key)
    return getattr(obj, key, None)


def _response(kept: Any) -> Any:
    """A request or response as the record kept it: its JSON (bytes), parsed here, or as is."""
    if type(kept) is bytes:
        try:
            return json.loads(kept)
        except ValueError:
            return None
    return kept


def _message(message: Any) -> dict[str, Any]:
    data = as_dict(message) or {}
    out: dict[str, Any] = {"role": data.get("role", "assistant"), "content": data.get("content")}
    for key in ("tool_calls", "refusal", "audio", "function_call"):
        if data.get(key):
            out[key] = data[key]
    return out


def build(record: CallRecord, *, capture_content: bool) -> dict[str, Any]:
    """The request log for one call, as Respan's logging API spells its fields."""
    body = _response(record.body) or {}  # the request's JSON as sent, or the SDK's dict
    log: dict[str, Any] = {
        "log_type": record.log_type,
        "model": body.get("model"),
        "stream": record.stream,
        "start_time": iso(record.start_ns),
        "timestamp": iso(record.end_ns),
        "generation_time": round((record.end_ns - record.start_ns) / 1e9, 6),
        "trace_unique_id": f"{record.trace_id:032x}",
        "span_unique_id": f"{record.span_id:016x}",
        "span_name": record.span_name,
    }
    if record.parent_id:
        log["span_parent_id"] = f"{record.parent_id:016x}"
    if record.ttft_ns is not None:
        log["ttft"] = round((record.ttft_ns - record.start_ns) / 1e9, 6)
    for key in REQUEST_FIELDS:
        if key in body and body[key] is not None:
            log[key] = body[key]
    for key in SCOPE_FIELDS:
        value = record.attributes.get(key)
        if value is not None:
            log[key] = value
    if record.cut_short:
        log["metadata"] = {**log.get("metadata", {}), "stream_cut_short": "true"}
    if record.cost is not None:
        log["cost"] = record.cost

    if record.error is not None:
        _add_error(log, record.error)
    else:
        log["status_code"] = 200
        log["status"] = "success"
    response = _response(record.response)
    if response is not None:
        model = _get(response, "model")
        if isinstance(model, str) and model:
            log["model"] = model
        _add_usage(log, record.log_type, _get(response, "usage"))
    if capture_content:
        _add_content(log, record, body, response)
    if not isinstance(log.get("model"), str) or not log["model"]:
        log["model"] = "unknown"
    return log


def _add_error(log: dict[str, Any], exc: BaseException) -> None:
    log["status"] = "error"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        log["status_code"] = status
        message = getattr(exc, "message", None) or str(exc)
        log["error_message"] = str(message)
    else:
        log["error_message"] = f"{type(exc).__name__}: {exc}"


def _add_usage(log: dict[str, Any], log_type: str, usage: Any) -> None:
    data = as_dict(usage)
    if not isinstance(data, Mapping):
        return
    log["usage"] = data
    if log_type == "response":
        prompt, completion = data.get("input_tokens"), data.get("output_tokens")
        in_details = data.get("input_tokens_details") or {}
        out_details = data.get("output_tokens_details") or {}
    else:
        prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
        in_details = data.get("prompt_tokens_details") or {}
        out_details = data.get("completion_tokens_details") or {}
    if isinstance(prompt, int):
        log["prompt_tokens"] = prompt
    if isinstance(completion, int):
        log["completion_tokens"] = completion
    elif log_type == "embedding":
        log["completion_tokens"] = 0
    cached = in_details.get("cached_tokens") if isinstance(in_details, Mapping) else None
    if cached:
        log["prompt_cache_hit_tokens"] = cached
    reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, Mapping) else None
    if reasoning:
        log["reasoning_tokens"] = reasoning


def _add_content(log: dict[str, Any], record: CallRecord, body: Mapping[str, Any], response: Any) -> None:
    kind = record.log_type
    if kind == "chat":
        if "messages" in body:
            log["prompt_messages"] = body["messages"]
        choices = _choices(response)
        if choices:
            messages = [_message(_get(c, "message")) for c in choices]
            log["completion_message"] = messages[0]
            if len(messages) > 1:
                log["completion_messages"] = messages
            tool_calls = [tc for m in messages for tc in m.get("tool_calls") or ()]
            if tool_calls:
                log["tool_calls"] = tool_calls
    elif kind == "response":
        if "instructions" in body and body["instructions"]:
            log["instructions"] = body["instructions"]
        if "input" in body:
            log["input"] = body["input"]
        output = _get(response, "output")
        if output is not None:
            items = [as_dict(item) for item in output]
            log["output"] = items
            calls = [i for i in items if isinstance(i, Mapping) and i.get("type") == "function_call"]
            if calls:
                log["tool_calls"] = calls
    elif kind == "embedding":
        if "input" in body:
            log["input"] = body["input"]
    elif kind == "completion":
        if "prompt" in body:
            log["input"] = body["prompt"]
        choices = _choices(response)
        if choices:
            texts = [_get(c, "text") for c in choices]
            log["output"] = texts[0] if len(texts) == 1 else texts


def _choices(response: Any) -> list[Any]:
    choices = _get(response, "choices")
    return list(choices) if choices else []


_MANUAL_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "log_type": (str,),
    "prompt_messages": (list,),
    "completion_message": (dict,),
    "completion_messages": (list,),
    "input": (str, list, dict),
    "output": (str, list, dict),
    "prompt_tokens": (int,),
    "completion_tokens": (int,),
    "usage": (dict,),
    "prompt_cache_hit_tokens": (int,),
    "reasoning_tokens": (int,),
    "cost": (int, float),
    "generation_time": (int, float),
    "ttft": (int, float),
    "latency": (int, float),
    "stream": (bool,),
    "status_code": (int,),
    "status": (str,),
    "error_message": (str,),
    "tool_calls": (list,),
    "start_time": (str,),
    "timestamp": (str,),
    "trace_unique_id": (str,),
    "span_unique_id": (str,),
    "span_parent_id": (str,),
    "span_name": (str,),
    "customer_identifier": (str, int),
    "customer_params": (dict,),
    "thread_identifier": (str,),
    "custom_identifier": (str,),
    "group_identifier": (str,),
    "metadata": (dict,),
    "properties": (dict,),
    "prompt_id": (str,),
    "prompt_name": (str,),
    "span_workflow_name": (str,),
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "frequency_penalty": (int, float),
    "presence_penalty": (int, float),
    "stop": (str, list),
    "n": (int,),
    "seed": (int,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "parallel_tool_calls": (bool,),
    "response_format": (dict,),
    "reasoning_effort": (str,),
    "service_tier": (str,),
}


def validate_manual(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check a hand-built log: `model` required, known fields only, types as the log spells them."""
    unknown = sorted(set(fields) - set(_MANUAL_TYPES))
    if unknown:
        raise TypeError(f"log() got unknown fields {unknown}")
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("log() needs model=<non-empty string>")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        kinds = _MANUAL_TYPES[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise TypeError(f"log(): {key} must be {names}, not {type(value).__name__}")
        out[key] = value
    out.setdefault("log_type", "chat")
    if "timestamp" not in out:
        import time

        out["timestamp"] = iso(time.time_ns())
    return out
