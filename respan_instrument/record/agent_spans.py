"""Pure: OpenAI Agents SDK traces and spans as Respan logs (built on the worker).

The caller's thread (capture/agents_tracing.py) snapshots each trace and span when it ends into an
`AgentSpan`; the worker builds its log here. A model call made inside a run carries an `Anchor`
(the run's trace id, the span it logs under, the run), applied to its log by `adopt`.

Ids: Respan wants W3C ids (32 and 16 hex). The SDK's trace id is `trace_` + 32 hex, kept as it
is; its span ids are `span_` + 24 hex, of which the first 16 are kept. Ids of another shape (the
SDK accepts any custom id) are hashed, so both threads derive the same id with no shared table.
The workflow log (the trace itself) gets a span id derived from the trace id.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from typing import Any

from .. import _context
from .anchors import Anchor, Run
from .call_record import CallRecord
from .timestamps import iso

# The `model` of a log that is no model call (Respan requires the field): a fixed word that no
# model is called, so model dashboards and pricing never mistake these logs for calls.
NO_MODEL = "none"
LOG_TYPES = ("workflow", "agent", "tool", "handoff", "guardrail", "task")
_HEX = frozenset(string.hexdigits)


class AgentSpan:
    """One trace or span as the caller's thread saw it end; `fields` holds what its kind logs."""

    __slots__ = ("kind", "name", "anchor", "parent_id", "start_ns", "end_ns", "attributes", "fields", "error")

    def __init__(
        self,
        kind: str,
        name: str,
        anchor: Anchor,
        parent_id: int,
        start_ns: int,
        end_ns: int,
        attributes: Mapping[str, Any],
        fields: dict[str, Any],
        error: Any = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.anchor = anchor  # its own ids: the children of this span log under it
        self.parent_id = parent_id  # the nearest logged ancestor (0 for the workflow)
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes  # attributes() where the span started
        self.fields = fields
        self.error = error  # the SDK's SpanError: {"message": ..., "data": ...}


def _hashed(text: str, size: int) -> int:
    return (
        int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=size).digest(), "big")
        or 1
    )


def trace_int(sdk_id: str) -> int:
    """The SDK's trace id as a 128-bit W3C trace id."""
    digits = sdk_id[6:] if sdk_id.startswith("trace_") else sdk_id
    if len(digits) == 32 and _HEX.issuperset(digits) and int(digits, 16):
        return int(digits, 16)
    return _hashed(sdk_id, 16)


def span_int(sdk_id: str) -> int:
    """The SDK's span id as a 64-bit W3C span id."""
    digits = sdk_id[5:] if sdk_id.startswith("span_") else sdk_id
    if len(digits) >= 16 and _HEX.issuperset(digits[:16]) and int(digits[:16], 16):
        return int(digits[:16], 16)
    return _hashed(sdk_id, 8)


def sample_key(trace_id: int) -> int:
    """The id a run's content is sampled by (SPEC §16). The SDK's trace ids are uuid4s, whose
    low 64 bits begin with the fixed variant bits `10`: compared as OpenTelemetry's random ids
    are, no run would keep its content under a rate of 0.5, and every run over 0.75. So: their
    62 random low bits, and 2 random bits of the high half."""
    return ((trace_id & ((1 << 62) - 1)) << 2) | ((trace_id >> 64) & 3)


def root_int(trace_id: int) -> int:
    """The workflow log's span id: derived from its trace id, distinct from the SDK's span ids."""
    return _hashed(f"{trace_id:032x}/workflow", 8)


def adopt(record: CallRecord, defaults: Mapping[str, Any]) -> None:
    """A model call made inside a run: its log joins the run's trace under the nearest logged
    span, in the run's thread and workflow unless `attributes()` named them."""
    anchor = record.anchor
    assert anchor is not None
    record.trace_id, record.parent_id = anchor.trace_id, anchor.span_id
    extra = _run_fields(anchor.run, record.attributes, defaults)
    if extra:
        record.attributes = {**record.attributes, **extra}


def _run_fields(run: Run, scope: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if run.group and not scope.get("thread_identifier") and not defaults.get("thread_identifier"):
        extra["thread_identifier"] = run.group
    if run.name and not scope.get("span_workflow_name") and not defaults.get("span_workflow_name"):
        extra["span_workflow_name"] = run.name
    return extra


def span_log(item: AgentSpan, *, capture_content: bool, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The Respan log of one Agents trace (`workflow`) or span."""
    anchor = item.anchor
    log: dict[str, Any] = {
        "log_type": item.kind,
        "model": NO_MODEL,
        "span_name": item.name,
        "start_time": iso(item.start_ns),
        "timestamp": iso(item.end_ns),
        "latency": round(max(item.end_ns - item.start_ns, 0) / 1e9, 6),
        "trace_unique_id": f"{anchor.trace_id:032x}",
        "span_unique_id": f"{anchor.span_id:016x}",
    }
    if item.parent_id:
        log["span_parent_id"] = f"{item.parent_id:016x}"
    metadata: dict[str, Any] = {}
    _KINDS[item.kind](log, metadata, item.fields, capture_content)
    error = item.error
    if error:
        log["status"] = "error"
        message = error.get("message") if isinstance(error, Mapping) else error
        log["error_message"] = str(message or "error")
        data = error.get("data") if isinstance(error, Mapping) else None
        if data and capture_content:
            metadata["error_data"] = data
    else:
        log["status"] = "success"
    scope = item.attributes
    if defaults:
        scope = _context.merge(defaults, scope) if scope else defaults
    for key in _context.LOG_FIELDS:
        value = scope.get(key)
        if value is not None:
            log[key] = value
    log.update(_run_fields(anchor.run, scope, {}))
    if metadata:  # what the span says, under what attributes() said
        log["metadata"] = {**metadata, **(log.get("metadata") or {})}
    return log


def _workflow(log: dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], content: bool) -> None:
    trace_metadata = fields.get("metadata")
    if isinstance(trace_metadata, Mapping):
        metadata.update(trace_metadata)


def _agent(log: dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], content: bool) -> None:
    if fields.get("tools"):
        log["span_tools"] = [str(name) for name in fields["tools"]]
    if fields.get("handoffs"):
        log["span_handoffs"] = [str(name) for name in fields["handoffs"]]
    if fields.get("output_type"):
        metadata["output_type"] = str(fields["output_type"])


def _tool(log: dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], content: bool) -> None:
    server = fields.get("server")
    if server is not None:  # an MCP server's tool listing
        metadata["mcp_server"] = str(server)
        if fields.get("result"):
            log["span_tools"] = [str(name) for name in fields["result"]]
        return
    log["span_tools"] = [log["span_name"]]
    mcp = fields.get("mcp_data")
    if mcp:
        metadata["mcp_data"] = mcp
    if content:
        if fields.get("input") is not None:
            log["input"] = str(fields["input"])
        if fields.get("output") is not None:
            output = fields["output"]
            log["output"] = output if isinstance(output, str) else str(output)


def _handoff(log: dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], content: bool) -> None:
    metadata["from_agent"] = fields.get("from_agent")
    metadata["to_agent"] = fields.get("to_agent")
    if fields.get("to_agent"):
        log["span_handoffs"] = [str(fields["to_agent"])]


def _guardrail(log: dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], content: bool) -> None:
    metadata["triggered"] = bool(fields.get("triggered"))


def _task(log: dict[str, Any], metadata: dict[str, Any], fields: dict[str, Any], content: bool) -> None:
    data = fields.get("data")
    if content and isinstance(data, Mapping) and data:  # a custom span's property bag may hold content
        metadata.update(data)


_KINDS = {
    "workflow": _workflow,
    "agent": _agent,
    "tool": _tool,
    "handoff": _handoff,
    "guardrail": _guardrail,
    "task": _task,
}
