"""The OTLP/HTTP destination: spans as protobuf to Respan's `/v2/traces`, or to a Collector.

Each row is one serialized `ExportTraceServiceRequest`; the body of a batch is its rows joined,
which protobuf reads as one request holding all their spans. An accepted answer may report
spans it turned down (`partial_success.rejected_spans`); the rest were taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import logger
from .destination import Encoder, RowErrors
from .echo_scrub import Quoting
from .http import CONNECT_TIMEOUT, Reply, Sender, Verdict

MAX_BATCH = 512  # spans in one request (the OpenTelemetry SDK's default export batch)
MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under common OTLP receivers' 4-20 MB body limits
PER_MINUTE = 30  # batched posts a minute: Respan's limit for its bulk logging API, kept here too
FEW = 5
CONTENT_TYPE = "application/x-protobuf"
ROUTE_PREFIX = "otlp:"  # spool rows of this destination never match a request-logs API root


class OtlpTraces:
    """OTLP/HTTP protobuf spans for one endpoint URL and key (a `Destination`)."""

    name = "the OTLP endpoint"
    max_batch = MAX_BATCH
    max_batch_bytes = MAX_BATCH_BYTES
    few = FEW

    def __init__(
        self,
        endpoint: str,
        api_key: str | None,
        *,
        encoder: Encoder | None = None,
        per_minute: float = PER_MINUTE,
        read_timeout: float,
    ) -> None:
        """`encoder`: makes OTLP spans (protobuf) of calls' records. `read_timeout`: seconds
        to wait for an answer (the settings' RESPAN_TIMEOUT)."""
        self.encoder = encoder
        self.endpoint = endpoint.rstrip("/")
        self.route = ROUTE_PREFIX + self.endpoint
        # Rows made without a key (a Collector adds it) get a fingerprint of their own, so
        # they are never mistaken for rows of unknown key from an earlier version.
        self.key: str | None = api_key or ""
        self.per_minute = per_minute
        self._read_timeout = read_timeout
        self.wire_timeout = CONNECT_TIMEOUT + read_timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.sender = Sender(self.endpoint, headers, read_timeout, content_type=CONTENT_TYPE)

    def post(self, rows: Sequence[bytes]) -> Reply:
        return self.sender.post("", b"".join(rows))

    def row_errors(self, reply: Reply, rows: Sequence[bytes]) -> RowErrors | None:
        rejected, message = _partial_success(reply)
        if not rejected:
            return None
        reason = Quoting(rows).text(message) or "rejected spans"
        return RowErrors(min(rejected, len(rows)), reason, f"{rejected} of {len(rows)} span(s): {reason}")

    def describe_row(self, row: bytes) -> str:
        return ""

    def say_config(self, verdict: Verdict, reply: Reply, place: str) -> None:
        if verdict is Verdict.REFUSED:
            logger.error(
                "respan_instrument: %s refused the API key (HTTP %s). Set a valid key in RESPAN_API_KEY "
                "or instrument(api_key=...). Calls carry on; their spans are kept in %s for this key.",
                self.endpoint,
                reply.status,
                place,
            )
        else:
            logger.error(
                "respan_instrument: %s does not take OTLP/HTTP traces (%s). Check RESPAN_OTLP_ENDPOINT "
                "(default: RESPAN_BASE_URL + /v2/traces; a Collector's is http://host:4318/v1/traces). "
                "Spans are kept in %s.",
                self.endpoint,
                reply.describe(),
                place,
            )

    def forked(self) -> OtlpTraces:
        return OtlpTraces(
            self.endpoint,
            self.key,
            encoder=self.encoder,
            per_minute=self.per_minute,
            read_timeout=self._read_timeout,
        )

    def close(self) -> None:
        self.sender.close()


def _partial_success(reply: Reply) -> tuple[int, str]:
    """(rejected spans, message) from an OTLP answer: protobuf, or JSON from some receivers."""
    body = reply.body
    if not body:
        return 0, ""
    data = reply.json()
    if isinstance(data, dict):
        partial = data.get("partialSuccess") or data.get("partial_success") or {}
        if isinstance(partial, dict):
            try:
                count = int(partial.get("rejectedSpans") or partial.get("rejected_spans") or 0)
            except (TypeError, ValueError):
                count = 0
            return count, str(partial.get("errorMessage") or partial.get("error_message") or "")
        return 0, ""
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        answer = ExportTraceServiceResponse.FromString(body)
    except Exception:  # noqa: BLE001 - an answer we cannot read says nothing of rejections
        return 0, ""
    return int(answer.partial_success.rejected_spans), str(answer.partial_success.error_message)


__all__ = ["CONTENT_TYPE", "OtlpTraces", "ROUTE_PREFIX"]
