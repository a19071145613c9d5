"""Content on the spans the application's own TracerProvider reads, set on the caller's thread.

Those spans end on the caller's thread, before the worker sees the call, so no redactor can run
on them (it runs on the worker only, SPEC §16): while one is set, `_setup` gives the shells no
`SpanContent` and those spans carry no content at all; the logs and the OTLP spans we export
carry it, redacted. Otherwise a span carries content as the call's log does: per the process
setting, the call's `attributes(capture_content=...)` and the trace's sample.
"""

from __future__ import annotations

from typing import Any

from ..endpoints import Endpoint
from ..record.agent_spans import sample_key
from ..record.call_record import CallRecord
from ..record.log_json import limited
from ..record.otlp_span import content_attributes
from ..record.privacy import Privacy


class SpanContent:
    """Which calls' spans carry content, and how much of it (the logs' limit)."""

    __slots__ = ("limit", "privacy")

    def __init__(self, limit: int, capture: bool, sample_rate: float = 1.0) -> None:
        self.limit = limit
        self.privacy = Privacy(capture, sample_rate)

    def attributes(
        self, endpoint: Endpoint, record: CallRecord, response: Any, reasons: Any
    ) -> dict[str, str]:
        """The GenAI conventions' content attributes of a call, truncated as a log's; none when
        the call keeps no content."""
        scope = record.attributes
        # a call inside an Agents run is sampled with the run (its log joins the run's trace)
        trace_id = record.trace_id if record.anchor is None else sample_key(record.anchor.trace_id)
        if not self.privacy.keeps(trace_id, scope.get("capture_content") if scope else None):
            return {}
        log: dict[str, Any] = {}
        endpoint.content(log, record.request, response, record.files)
        attrs = content_attributes(log, reasons)
        limit = self.limit
        # the common conversation is surely within the limit (4 bytes a character at most)
        if 4 * sum(map(len, attrs.values())) > limit or any("data:" in v for v in attrs.values()):
            attrs = content_attributes(limited(log, limit), reasons)
        return attrs
