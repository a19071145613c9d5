"""Live API sessions (`live.connect()`, `live.sideband.connect()`, `live.forks.connect()`): the
session as one log, and each Responses run it delegates to as a `response` log of its own.

The session is logged at `session.closed`, which carries its final usage (billable seconds);
when the connection ends without it, at the last `session.usage.updated` seen (cumulative, so the
last one is the session's so far), cut short. A session id logged once in this process (say by
the app's own connection and by its sideband) is not logged again. The session's log and its
delegated runs share one trace: the runs are children of the session's span, which starts when
the connection opens and ends with it, and the session id is the thread of both.

Delegated runs arrive as `response.event` wrapping a Responses stream event; their lifecycle
snapshots carry no output, so a run's output is its text deltas, read with the Responses stream
accumulator. Audio deltas (the many events) cost a substring test and are never parsed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from .._errors import contained
from ..endpoints.base import get
from ..endpoints.live import LIVE
from ..endpoints.responses import RESPONSES, ResponsesAccumulator
from ..record.call_record import CallRecord
from ..record.settle import ids
from .sockets import Protocol, Recorder, message
from .traced_call import Hooks

_IN_EVENT = contained("reading a Live event")
_IN_FINISHING = contained("logging a Live session")
_PARSED = (b'"session.', b'"response.event"')
_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})
_logged: OrderedDict[str, bool] = OrderedDict()  # Live session ids logged in this process
_logged_lock = threading.Lock()
_REMEMBERED = 4096


def _first_log_of(session_id: str | None) -> bool:
    if session_id is None:
        return True
    with _logged_lock:
        if session_id in _logged:
            return False
        _logged[session_id] = True
        if len(_logged) > _REMEMBERED:
            _logged.popitem(last=False)
        return True


class _Run:
    """A delegated Responses run in flight."""

    __slots__ = ("start_ns", "ttft_ns", "acc", "created")

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.ttft_ns: int | None = None
        self.acc = ResponsesAccumulator()
        self.created: Any = None


class LiveSession(Recorder):
    """A Live connection: the session's model, id, usage and transcripts, its span (or ids),
    and the delegated runs in flight (by delegation)."""

    __slots__ = (
        "start_ns",
        "session_id",
        "model",
        "instructions",
        "usage",
        "heard",
        "said",
        "runs",
        "span",
        "ids",
        "done",
    )
    parsed = _PARSED
    reading = _IN_EVENT

    def __init__(self, hooks: Hooks, ctx: Any, scope: Mapping[str, Any]) -> None:
        super().__init__(hooks, ctx, scope)
        self.start_ns = time.time_ns()
        self.session_id: str | None = None
        self.model: str | None = None
        self.instructions: str | None = None
        self.usage: Any = None
        self.heard: list[str] = []
        self.said: list[str] = []
        self.runs: dict[Any, _Run] = {}
        self.done = False
        self.span: trace.Span | None = None
        tracer = hooks.tracing.tracer()
        if tracer is not None:  # the session's span, parent of its delegated runs' (never current)
            self.span = tracer.start_span(
                "chat", ctx or None, trace.SpanKind.CLIENT, start_time=self.start_ns
            )
            context = self.span.get_span_context()
            parent = trace.get_current_span(ctx).get_span_context() if ctx else None
            self.ids = (
                context.trace_id,
                context.span_id,
                parent.span_id if parent and parent.is_valid else 0,
            )
        else:
            self.ids = ids(ctx)

    def _inner(self) -> Any:
        """The context of the session's span: where its delegated runs belong."""
        span = self.span
        if span is None:
            trace_id, span_id, _ = self.ids
            flags = trace.TraceFlags(trace.TraceFlags.SAMPLED)
            span = trace.NonRecordingSpan(trace.SpanContext(trace_id, span_id, False, flags))
        return trace.set_span_in_context(span, self.ctx or None)

    # ---- the app's thread / loop -----------------------------------------------------------
    def received(self, data: Any) -> None:
        got = message(data)
        if got is None:
            return
        data, head = got
        if b'audio.delta"' in head or b'input_audio.append"' in head:
            return  # audio in or out: the many events, never read
        self.read(data, head)

    def sent(self, event: Any) -> None:
        if get(event, "type") != "session.start":
            return
        with _IN_EVENT:
            session = get(event, "session")
            model, instructions = get(session, "model"), get(session, "instructions")
            if isinstance(model, str) and self.model is None:
                self.model = model
            if isinstance(instructions, str):
                self.instructions = instructions

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.output_transcript.delta" or kind == "session.input_transcript.delta":
            delta = event.get("delta")
            if isinstance(delta, str):
                (self.said if kind == "session.output_transcript.delta" else self.heard).append(delta)
        elif kind == "response.event":
            inner = event.get("event")
            if isinstance(inner, dict):
                self._delegated(event.get("delegation_id"), inner)
        elif kind in ("session.started", "session.updated", "session.closed"):
            session = event.get("session")
            if isinstance(session, dict):
                if isinstance(session.get("id"), str):
                    self.session_id = session["id"]
                if isinstance(session.get("model"), str):
                    self.model = session["model"]
                if isinstance(session.get("instructions"), str):
                    self.instructions = session["instructions"]
            if event.get("usage") is not None:
                self.usage = event["usage"]
            if kind == "session.closed":
                self._finish(event.get("reason"), False)
        elif kind == "session.usage.updated":
            self.usage = event.get("usage")

    # ---- delegated Responses runs ------------------------------------------------------------
    def _delegated(self, key: Any, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.created":
            self.runs[key] = _Run(time.time_ns())
        run = self.runs.get(key)
        if run is None:
            if kind not in _TERMINAL:
                return
            run = _Run(time.time_ns())  # its start came before we were watching
        # (its terminal snapshot, whose output is left out, must not hide the deltas' output)
        if kind not in _TERMINAL and run.acc.add(event) and run.ttft_ns is None:
            run.ttft_ns = time.time_ns()
        if kind == "response.created":
            run.created = event.get("response")
        elif kind in _TERMINAL:
            self.runs.pop(key, None)
            self._log_run(run, event.get("response"), False)

    def _log_run(self, run: _Run, final: Any, cut_short: bool) -> None:
        response = dict(final if isinstance(final, dict) else run.created or {})
        if not response.get("output"):  # (snapshots leave it out: the deltas are the output)
            response["output"] = run.acc.output
        model = response.get("model") or "unknown"
        thread = self.attributes(self.session_id, live="true")
        record = CallRecord(
            RESPONSES, {"model": model}, "", run.start_ns, f"{RESPONSES.operation} {model}", thread
        )
        record.end_ns = time.time_ns()
        record.stream = True
        record.ttft_ns = run.ttft_ns
        record.response = response
        record.cut_short = cut_short
        if response.get("status") == "failed":
            record.error = RESPONSES.stream_error(response.get("error"))
        self.hand_over(record, self._inner())

    # ---- the session ends --------------------------------------------------------------------
    def closed(self) -> None:
        runs, self.runs = self.runs, {}
        with _IN_FINISHING:
            for run in runs.values():
                self._log_run(run, None, True)
            if not self.done and (self.usage is not None or self.session_id is not None):
                self._finish(None, True)
            elif self.span is not None and not self.done:  # nothing was billed: no log
                self.done = True
                self.span.end()

    def _finish(self, reason: Any, cut_short: bool) -> None:
        if self.done:
            return
        self.done = True
        if not _first_log_of(self.session_id):  # (another connection to it logged it)
            if self.span is not None:
                self.span.end()
            return
        model = self.model or "unknown"
        request: dict[str, Any] = {"model": model}
        if self.instructions:
            request["instructions"] = self.instructions
        response = {"id": self.session_id, "model": model, "usage": self.usage, "reason": reason}
        if self.heard:
            response["heard"] = "".join(self.heard)
        if self.said:
            response["said"] = "".join(self.said)
        name = f"{LIVE.operation} {model}"
        record = CallRecord(
            LIVE, request, "", self.start_ns, name, self.attributes(self.session_id, live="true")
        )
        record.end_ns = time.time_ns()
        record.response = response
        record.cut_short = cut_short
        record.trace_id, record.span_id, record.parent_id = self.ids
        span = self.span
        if span is not None:
            span.update_name(name)
            span.set_attributes(LIVE.request_attributes(request, "openai"))
        self.settled(record, span)


PROTOCOL = Protocol(
    (
        ("openai.resources.live.live", "LiveConnection"),
        ("openai.resources.live.sideband", "SidebandConnection"),
        ("openai.resources.live.forks", "ForksConnection"),
    ),
    LiveSession,
)
