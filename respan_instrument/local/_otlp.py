"""The collector's OTLP/HTTP trace receiver: protobuf (or JSON) ExportTraceServiceRequest bodies
decoded with `opentelemetry-proto` into plain span dicts a test can assert on."""

from __future__ import annotations

from typing import Any

TRACE_PATHS = ("/api/v2/traces", "/v1/traces")


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def decode(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The spans of one request, each with its resource and scope; ValueError when the body is
    not an ExportTraceServiceRequest."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        if "json" in content_type:
            json_format.Parse(body.decode("utf-8"), request)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        raise ValueError(f"not an ExportTraceServiceRequest: {exc}") from exc
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": int(span.kind),
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "attributes": _attributes(span.attributes),
                        "status": {"code": int(span.status.code), "message": span.status.message},
                        "events": [
                            {"name": e.name, "attributes": _attributes(e.attributes)} for e in span.events
                        ],
                        "resource": resource,
                        "scope": {"name": scope_spans.scope.name, "version": scope_spans.scope.version},
                    }
                )
    return spans


def answer(content_type: str) -> tuple[bytes, str]:
    """An empty ExportTraceServiceResponse (all spans taken), in the request's encoding."""
    if "json" in content_type:
        return b"{}", "application/json"
    return b"", "application/x-protobuf"
