"""Pure, on the worker: a settled call and its log as one OpenTelemetry span, OTLP-encoded.

Each call becomes one serialized `ExportTraceServiceRequest` holding one span: the spool keeps
rows, and the concatenation of serialized messages whose fields are all repeated is itself a
valid message, so a batch's body is its rows joined (`deliver/otlp_traces.py`).

The span carries the ids the call's live span had (or would have had), so it joins the
application's trace; its attributes are those of the live span plus what only the settled
call knows: content, cost, the thread found on the worker, and the legacy indexed names
Respan's OTLP page lists.
"""

from __future__ import annotations

import importlib.util
import random
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .. import _semconv as sc
from .._context import LOG_FIELDS
from .._version import __version__
from . import messages as msg
from .agent_spans import NO_MODEL
from .call_record import CallRecord
from .cost import breakdown_of
from .encoders import ItemEncoder
from .log_json import json_text, limited

SCOPE = "respan_instrument"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_INT64 = (-(2**63), 2**63 - 1)
# a log() dict has no endpoint: its log_type names the operation
_OPERATIONS = {
    "chat": "chat",
    "response": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    # an OpenAI Agents SDK run's own logs (record/agent_spans.py): spans of our process, not client calls
    "workflow": "invoke_workflow",
    "agent": "invoke_agent",
    "tool": "execute_tool",
}


def available() -> bool:
    """True when the OTLP encoder packages (the `otlp` extra) are installed."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("opentelemetry.exporter.otlp.proto.common", "opentelemetry.proto")
        )
    except (ImportError, ValueError):
        return False


class SpanEncoder(ItemEncoder):
    """OTLP spans, one per log, each as a serialized request (`OtlpTraces`' rows); one per
    pipeline (its resource is read once)."""

    def __init__(self, **options: Any) -> None:
        """`options`: those of `ItemEncoder`."""
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self._encode_spans = encode_spans
        self._span = ReadableSpan
        self._event = Event
        self._resource = Resource.create()  # service.name and OTEL_RESOURCE_ATTRIBUTES
        self._scope = InstrumentationScope(SCOPE, __version__)
        super().__init__(**options)

    def _row(self, record: CallRecord | None, log: dict[str, Any], hand_built: bool = False) -> bytes:
        """One serialized ExportTraceServiceRequest with this log's span."""
        log = limited(log, self.max_content_bytes)
        trace_id = _hex_id(log.get("trace_unique_id"), 128)
        span_id = _hex_id(log.get("span_unique_id"), 64)
        parent_id = _hex_id(log.get("span_parent_id"), 64, fresh=False)
        if record is not None:
            start_ns, end_ns = record.start_ns, record.end_ns
        else:
            end_ns = _ns(log.get("timestamp")) or time.time_ns()
            start_ns = _ns(log.get("start_time")) or end_ns
        attrs = span_attributes(record, log)
        events: list[Any] = []
        status = Status(StatusCode.UNSET)
        if log.get("status") == "error":
            message = str(log.get("error_message") or "error")
            status = Status(StatusCode.ERROR, message)
            error = record.error if record is not None else None
            kind = type(error).__qualname__ if error is not None else "error"
            attrs[sc.ERROR_TYPE] = kind
            events.append(
                self._event(
                    "exception", {"exception.type": kind, "exception.message": message}, timestamp=end_ns
                )
            )
        span = self._span(
            name=str(log.get("span_name") or f"{attrs.get(sc.OPERATION_NAME)} {log.get('model')}"),
            context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED),
            parent=(
                SpanContext(trace_id, parent_id, is_remote=False, trace_flags=_SAMPLED) if parent_id else None
            ),
            resource=self._resource,
            attributes=attrs,
            events=events,
            kind=SpanKind.INTERNAL if log.get("model") == NO_MODEL else SpanKind.CLIENT,
            status=status,
            start_time=start_ns,
            end_time=max(end_ns, start_ns),
            instrumentation_scope=self._scope,
        )
        return bytes(self._encode_spans([span]).SerializeToString())


def span_attributes(record: CallRecord | None, log: Mapping[str, Any]) -> dict[str, Any]:
    """The span attributes of a settled call (or of a log() dict, `record` None)."""
    attrs: dict[str, Any] = {}
    model = log.get("model")
    if record is not None:
        endpoint = record.endpoint
        attrs.update(endpoint.request_attributes(record.request, record.provider))
        if "model" not in record.request and isinstance(model, str):
            attrs[sc.REQUEST_MODEL] = model  # (a Batch result: the request was not ours)
        if record.error is None and record.response is not None:
            attrs.update(endpoint.outcome(record.response, True)[0])
    elif model == NO_MODEL:  # no model call: an Agents SDK workflow, agent, tool, ...
        return _run_attributes(log)
    else:
        attrs[sc.OPERATION_NAME] = _OPERATIONS.get(str(log.get("log_type")), str(log.get("log_type")))
        attrs[sc.REQUEST_MODEL] = str(model)
        if isinstance(log.get("prompt_tokens"), int):
            attrs[sc.USAGE_INPUT_TOKENS] = log["prompt_tokens"]
        if isinstance(log.get("completion_tokens"), int):
            attrs[sc.USAGE_OUTPUT_TOKENS] = log["completion_tokens"]
    attrs[sc.LOG_TYPE] = str(log.get("log_type"))
    if sc.RESPONSE_MODEL not in attrs and isinstance(model, str) and model != "unknown":
        attrs[sc.RESPONSE_MODEL] = model
    attrs.update(sc.cost_attributes(log.get("cost"), *breakdown_of(log.get("metadata"))))
    ttft = log.get("ttft")
    if isinstance(ttft, (int, float)):
        attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = attrs[sc.TTFT] = float(ttft)
    attrs.update(sc.scope_attributes({key: log[key] for key in LOG_FIELDS if key in log}))
    # the indexed names Respan's OTLP page lists
    if sc.USAGE_INPUT_TOKENS in attrs:
        attrs[sc.LEGACY_PROMPT_TOKENS] = attrs[sc.USAGE_INPUT_TOKENS]
        output = attrs.get(sc.USAGE_OUTPUT_TOKENS, 0)
        if sc.USAGE_OUTPUT_TOKENS in attrs:
            attrs[sc.LEGACY_COMPLETION_TOKENS] = output
        attrs[sc.LEGACY_TOTAL_TOKENS] = attrs[sc.USAGE_INPUT_TOKENS] + output
    _add_content(attrs, log)
    return {key: _fit(value) for key, value in attrs.items()}


def _run_attributes(log: Mapping[str, Any]) -> dict[str, Any]:
    """The span attributes of an Agents SDK run's own log: its kind and name, a tool's arguments
    and result (content capture on), and the `attributes()` values."""
    kind = str(log.get("log_type"))
    attrs: dict[str, Any] = {sc.OPERATION_NAME: _OPERATIONS.get(kind, kind), sc.LOG_TYPE: kind}
    name = log.get("span_name")
    if kind == "agent":
        attrs[sc.AGENT_NAME] = name
    elif kind == "tool":
        attrs[sc.TOOL_NAME] = name
        if isinstance(log.get("input"), str):
            attrs[sc.TOOL_CALL_ARGUMENTS] = log["input"]
        if log.get("output") is not None:
            output = log["output"]
            attrs[sc.TOOL_CALL_RESULT] = output if isinstance(output, str) else json_text(output)
    for key, attribute in (("span_tools", sc.SPAN_TOOLS), ("span_handoffs", sc.SPAN_HANDOFFS)):
        if log.get(key):
            attrs[attribute] = json_text(log[key])
    attrs.update(sc.scope_attributes({key: log[key] for key in LOG_FIELDS if key in log}))
    return {key: _fit(value) for key, value in attrs.items() if value is not None}


def _add_content(attrs: dict[str, Any], log: Mapping[str, Any]) -> None:
    """Content attributes, when the log has content (content capture on), in the conventions'
    schema and under the indexed names Respan's OTLP page lists."""
    reasons = attrs.get(sc.RESPONSE_FINISH_REASONS) or ()
    instructions = msg.system_instructions(log)
    inputs = msg.input_messages(log)
    outputs = msg.output_messages(log, list(reasons))
    attrs.update(_conventions(instructions, inputs, outputs))
    n = 0
    if instructions:
        attrs[f"{sc.LEGACY_PROMPT}.0.role"] = "system"
        attrs[f"{sc.LEGACY_PROMPT}.0.content"] = msg.flat({"parts": instructions})
        n = 1
    for i, message in enumerate(inputs or (), n):
        attrs[f"{sc.LEGACY_PROMPT}.{i}.role"] = message["role"]
        attrs[f"{sc.LEGACY_PROMPT}.{i}.content"] = msg.flat(message)
    for i, message in enumerate(outputs or ()):
        attrs[f"{sc.LEGACY_COMPLETION}.{i}.role"] = message["role"]
        attrs[f"{sc.LEGACY_COMPLETION}.{i}.content"] = msg.flat(message)
        if "finish_reason" in message:
            attrs[f"{sc.LEGACY_COMPLETION}.{i}.finish_reason"] = message["finish_reason"]


def _conventions(instructions: Any, inputs: Any, outputs: Any) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if instructions:
        attrs[sc.SYSTEM_INSTRUCTIONS] = json_text(instructions)
    if inputs is not None:
        attrs[sc.INPUT_MESSAGES] = json_text(inputs)
    if outputs is not None:
        attrs[sc.OUTPUT_MESSAGES] = json_text(outputs)
    return attrs


def content_attributes(log: Mapping[str, Any], reasons: Sequence[str] | None) -> dict[str, str]:
    """The GenAI conventions' content attributes of a log's (truncated) content fields: what a
    span that reaches the application's own TracerProvider carries with content capture on."""
    outputs = msg.output_messages(log, list(reasons or ()))
    return _conventions(msg.system_instructions(log), msg.input_messages(log), outputs)


def _fit(value: Any) -> Any:
    """What an OTLP attribute can hold: an int beyond 64 bits, or a mixed list, as text."""
    if isinstance(value, bool) or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value)
    return str(value)


def _hex_id(value: Any, bits: int, fresh: bool = True) -> int:
    """A W3C id from its hex form; a fresh one (or 0) when it is missing or malformed."""
    if isinstance(value, str):
        try:
            number = int(value, 16)
        except ValueError:
            number = 0
        if 0 < number < 1 << bits:
            return number
    return random.getrandbits(bits) if fresh else 0


def _ns(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return None
