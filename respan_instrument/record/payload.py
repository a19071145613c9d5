"""Pure: a finished, settled call -> the Respan request-log dict (runs on the worker)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._context import LOG_FIELDS
from ..endpoints.base import Prices, as_dict, get
from .agent_spans import AgentSpan, adopt, sample_key, span_log
from .agent_turns import agent_turns
from .batch_output import split
from .call_record import CallRecord
from .cost import add_cost
from .privacy import Privacy
from .settle import add_thread, first_finished, settle
from .timestamps import iso
from .worker_memory import WorkerMemory

# attributes() keys that become log fields (customer_credentials never does)
SCOPE_FIELDS = LOG_FIELDS


def logs_of(
    record: CallRecord | AgentSpan,
    *,
    privacy: Privacy,
    prices: Prices,
    defaults: Mapping[str, Any],
    seen: WorkerMemory,
) -> list[dict[str, Any]]:
    """The worker's whole job for one call: settle it, then build its log (none for a poll of
    an unfinished response, one per result for a Batch output file). Content is redacted later,
    with every other kind of log (`Privacy.redacted`)."""
    calls = calls_of(record, privacy=privacy, prices=prices, defaults=defaults, seen=seen)
    return [log for _, log in calls]


def calls_of(
    record: CallRecord | AgentSpan,
    *,
    privacy: Privacy,
    prices: Prices,
    defaults: Mapping[str, Any],
    seen: WorkerMemory,
) -> list[tuple[CallRecord | None, dict[str, Any]]]:
    """`logs_of`, each log with the settled record it was built from (a Batch output file's
    results are records of their own; an Agents SDK span's log has none)."""
    if isinstance(record, AgentSpan):
        keeps = privacy.keeps(sample_key(record.anchor.trace_id), record.attributes.get("capture_content"))
        return [(None, span_log(record, capture_content=keeps, defaults=defaults))]
    settle(record, prices, defaults)
    if record.anchor is not None:
        adopt(record, defaults)
    # content as the call's trace and `attributes(capture_content=...)` decide (SPEC §16)
    anchor = record.anchor  # (a call in an Agents run: sampled with the run)
    trace_id = record.trace_id if anchor is None else sample_key(anchor.trace_id)
    capture_content = privacy.keeps(trace_id, record.attributes.get("capture_content"))
    endpoint = record.endpoint
    lines = endpoint.lines(record.response)
    if lines is not None and endpoint.logs_turns:
        return [
            (sub, build(sub, capture_content=capture_content))
            for sub in agent_turns(record, lines, prices, seen, capture_content)
        ]
    if lines is not None:
        file_id = str(record.request.get("id"))
        if record.error is not None or file_id in seen.logged_files:
            return []
        seen.logged_files.put(file_id, True)
        return [(sub, build(sub, capture_content=capture_content)) for sub in split(record, lines, prices)]
    if endpoint.terminal_only(record.request) and not first_finished(record, seen):
        return []
    add_thread(record, seen)
    return [(record, build(record, capture_content=capture_content))]


def build(record: CallRecord, *, capture_content: bool) -> dict[str, Any]:
    """The request log for one settled call, as Respan's logging API spells its fields."""
    endpoint = record.endpoint
    body = record.request
    log: dict[str, Any] = {
        "log_type": endpoint.log_type,
        "model": endpoint.model_of(body, record.response),
        "stream": record.stream,
        "start_time": iso(record.start_ns),
        "timestamp": iso(record.end_ns),
        "generation_time": round((record.end_ns - record.start_ns) / 1e9, 6),
        # (W3C ids, 128 and 64 bits: as hex of their bytes, half the cost of a format spec)
        "trace_unique_id": record.trace_id.to_bytes(16, "big").hex(),
        "span_unique_id": record.span_id.to_bytes(8, "big").hex(),
        "span_name": record.span_name,
    }
    if record.parent_id:
        log["span_parent_id"] = record.parent_id.to_bytes(8, "big").hex()
    if record.ttft_ns is not None:
        log["ttft"] = round((record.ttft_ns - record.start_ns) / 1e9, 6)
    endpoint.parameters(log, body)
    scope = record.attributes
    if scope:  # (usually empty)
        for key in SCOPE_FIELDS:
            value = scope.get(key)
            if value is not None:
                log[key] = value
    if record.cut_short:
        log["metadata"] = {**log.get("metadata", {}), "stream_cut_short": "true"}
    add_cost(log, record)

    response = record.response
    if record.error is not None:
        _add_error(log, record.error)
    else:
        log["status_code"] = 200
        log["status"] = "success"
        ended = endpoint.ended(body, response) if response is not None else None
        if ended is not None:  # finished otherwise than done (a background response cancelled)
            status, message = ended
            log["metadata"] = {**log.get("metadata", {}), "response_status": status}
            if message is not None:
                log["status"] = "error"
                log["error_message"] = message
    if response is not None:
        model = get(response, "model")
        if isinstance(model, str) and model:
            log["model"] = model
        _add_usage(log, record, get(response, "usage"))
    if capture_content:
        endpoint.content(log, body, response, record.files)
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


def _add_usage(log: dict[str, Any], record: CallRecord, usage: Any) -> None:
    """The provider's usage as it sent it, and the token counts Respan reads from it."""
    data = as_dict(usage)
    if type(data) is not dict and not isinstance(data, Mapping):  # (an ABC check costs a call)
        return
    log["usage"] = data
    tokens = record.usage if record.usage is not None else record.endpoint.usage(data)
    if tokens is None:
        return
    log["prompt_tokens"] = tokens.input_tokens
    log["completion_tokens"] = tokens.output_tokens
    if tokens.cached_input_tokens:
        log["prompt_cache_hit_tokens"] = tokens.cached_input_tokens
    if tokens.cache_write_tokens:
        log["prompt_cache_creation_tokens"] = tokens.cache_write_tokens
    if tokens.reasoning_tokens:
        log["reasoning_tokens"] = tokens.reasoning_tokens
