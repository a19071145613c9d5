"""`log()`: a hand-built request log, checked before it is queued."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .timestamps import iso

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
    "span_tools": (list,),  # an agent's tools, or the tool a tool span ran
    "span_handoffs": (list,),  # an agent's handoffs
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
        out["timestamp"] = iso(time.time_ns())
    return out
