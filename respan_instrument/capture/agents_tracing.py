"""OpenAI Agents SDK runs as Respan traces: our tracing processor, on the caller's thread.

The SDK calls a processor's hooks synchronously where its traces and spans start and end. Ours
keeps, per open span, where that span's children hang (the span itself when it makes a log, else
its nearest logged ancestor), and when a trace or span ends hands a snapshot of it to the
pipeline; the worker builds its log (record/agent_spans.py). A model call reads the SDK's current span
(`anchor()`) and its log hangs under it: the SDK's own model spans (`generation`, `response`,
`transcription`, `speech`) make no log, so each model call is logged once, by the openai capture.

Nothing here imports the Agents SDK until it is imported (a post-import hook, as for openai).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import wrapt

from .. import _context
from .._errors import contained, log_once
from ..record.agent_spans import AgentSpan, root_int, span_int, trace_int
from ..record.anchors import Anchor, Run
from . import agents_realtime as _realtime_agents
from . import agents_run as _run
from . import agents_socket as _socket_agents

MODULE = "agents"
# The SDK's span type -> the log it makes (None: no log; its children hang under its parent).
# `task` (a Runner run) and `turn` (one loop turn) are the SDK's own grouping spans: they carry
# usage summed over the model calls below them, so they are folded, never logged.
KINDS: Mapping[str, str | None] = {
    "agent": "agent",
    "function": "tool",
    "mcp_tools": "tool",
    "handoff": "handoff",
    "guardrail": "guardrail",
    "custom": "task",
    "speech_group": "task",
    "task": None,
    "turn": None,
    "generation": None,
    "response": None,
    "transcription": None,
    "speech": None,
}
# a cap on spans and traces kept open, for an app that starts traces and never ends them
MAX_OPEN = 10_000
_scope = _context.current_reader()


class _Open:
    """A span or trace that started and has not ended yet."""

    __slots__ = ("kind", "anchor", "parent_id", "start_ns", "attributes", "trace_key", "spans", "seen")

    def __init__(
        self, kind: str | None, anchor: Anchor, parent_id: int, attributes: Mapping[str, Any], trace_key: str
    ) -> None:
        self.kind = kind
        self.anchor = anchor  # where this span's children hang (itself when it makes a log)
        self.parent_id = parent_id
        self.start_ns = time.time_ns()
        self.attributes = attributes
        self.trace_key = trace_key
        self.spans = 0  # a trace's: its spans open now
        self.seen = True  # a trace's: its start was seen (else its end may never come)


class Spans:
    """The processor's body (the SDK's `TracingProcessor` interface; mixed into a subclass of
    it when the SDK is imported). Every hook contains its own errors: the run never sees them."""

    def __init__(self) -> None:
        self.sink: Callable[[Any], None] | None = None  # the pipeline's submit; None: inert
        self._open: dict[str, _Open] = {}  # SDK span id or trace id -> its open entry
        self._live: dict[Any, Anchor] = {}  # span or trace object -> its anchor (what model calls read)

    # ---- what a model call reads (the hot path) ----------------------------------------------
    def anchor(self, span: Any, trace: Any) -> Anchor | None:
        """Where a model call made now hangs: under the current span, else the current trace."""
        if span is not None:
            found = self._live.get(span)
            if found is not None:
                return found
        return self._live.get(trace) if trace is not None else None

    # ---- the SDK's hooks ---------------------------------------------------------------------
    def on_trace_start(self, trace: Any) -> None:
        with contained("starting an Agents trace"):
            if self.sink is not None:
                self._trace_entry(trace)

    def on_trace_end(self, trace: Any) -> None:
        with contained("ending an Agents trace"):
            self._live.pop(trace, None)
            entry = self._open.pop(trace.trace_id, None)
            sink = self.sink
            if entry is None or sink is None:
                return
            run = entry.anchor.run
            run.name = str(trace.name or run.name)
            fields = {"metadata": getattr(trace, "metadata", None)}
            sink(
                AgentSpan(
                    "workflow",
                    run.name,
                    entry.anchor,
                    0,
                    entry.start_ns,
                    time.time_ns(),
                    entry.attributes,
                    fields,
                )
            )
            self._forget(trace.trace_id)

    def on_span_start(self, span: Any) -> None:
        with contained("starting an Agents span"):
            if self.sink is None:
                return
            key = span.trace_id
            parent_key = span.parent_id
            parent = self._open.get(parent_key) if parent_key else None
            trace = self._open.get(key)
            if trace is None:  # a trace we did not see start: its object, where it is current
                current = _run.current_trace.get() if _run.current_trace is not None else None
                same = current is not None and getattr(current, "trace_id", None) == key
                # one begun before instrument() ends, and its end makes the workflow log; one
                # resumed from a saved run state never says it ended (its workflow log was made
                # by the run that saved it): that entry goes when its last span does
                ends = same and type(current).__name__ != "ReattachedTrace"
                trace = self._trace_entry(current if same else None, key, seen=ends)
            trace.spans += 1
            if parent is None:
                parent = trace
            base = parent.anchor
            kind = KINDS.get(span.span_data.type, "task")
            anchor = Anchor(base.trace_id, span_int(span.span_id), base.run) if kind else base
            if len(self._open) >= MAX_OPEN:
                self._shed()
            self._open[span.span_id] = _Open(kind, anchor, base.span_id, _scope(), key)
            self._live[span] = anchor

    def on_span_end(self, span: Any) -> None:
        with contained("ending an Agents span"):
            self._live.pop(span, None)
            entry = self._open.pop(span.span_id, None)
            if entry is not None:
                trace = self._open.get(entry.trace_key)
                if trace is not None:
                    trace.spans -= 1
                    # a trace resumed from a saved run state (or begun before instrument())
                    # may never say it ended: forget it when it has no span open
                    if not trace.seen and trace.spans <= 0:
                        self._open.pop(entry.trace_key, None)
            sink = self.sink
            if entry is None or entry.kind is None or sink is None:
                return
            data = span.span_data
            name, fields = _snapshot(entry.kind, data)
            sink(
                AgentSpan(
                    entry.kind,
                    name,
                    entry.anchor,
                    entry.parent_id,
                    entry.start_ns,
                    time.time_ns(),
                    entry.attributes,
                    fields,
                    span.error,
                )
            )

    def shutdown(self, timeout: float | None = None) -> None:
        return None  # the pipeline flushes at exit on its own

    def force_flush(self) -> None:
        return None  # what ended is queued already; `respan_instrument.flush()` delivers it

    # ---- bookkeeping -------------------------------------------------------------------------
    def _trace_entry(self, trace: Any, key: str | None = None, seen: bool = True) -> _Open:
        """A trace's entry; made too when a span of a trace we never saw start shows up (one
        begun before `instrument()`, or resumed from a saved run state)."""
        key = key if key is not None else trace.trace_id
        assert key is not None
        trace_id = trace_int(key)
        name = str(getattr(trace, "name", "") or "")
        group = getattr(trace, "group_id", None)
        run = Run(name, str(group) if group else None, None)
        anchor = Anchor(trace_id, root_int(trace_id), run)
        entry = _Open("workflow", anchor, 0, _scope(), key)
        entry.seen = seen
        if len(self._open) >= MAX_OPEN:
            self._shed()
        self._open[key] = entry
        if trace is not None and seen:
            self._live[trace] = anchor
        return entry

    def _forget(self, trace_key: str) -> None:
        """A trace ended: spans of it still open (abandoned) will never make a log now. (Copies
        are iterated: other threads' runs open and close spans meanwhile.)"""
        stale = [key for key, entry in list(self._open.items()) if entry.trace_key == trace_key]
        if not stale:
            return
        for key in stale:
            self._open.pop(key, None)
        for obj in [obj for obj in list(self._live) if getattr(obj, "trace_id", None) == trace_key]:
            self._live.pop(obj, None)

    def _shed(self) -> None:
        log_once("agents-open", "respan_instrument: over %d Agents spans open; forgetting them", MAX_OPEN)
        self._open.clear()
        self._live.clear()


def _snapshot(kind: str, data: Any) -> tuple[str, dict[str, Any]]:
    """A span's name and the fields its log shows, read now (the worker reads them later)."""
    get = getattr
    kind_name = data.type
    if kind_name == "agent":
        fields = {"tools": get(data, "tools", None), "handoffs": get(data, "handoffs", None)}
        fields["output_type"] = get(data, "output_type", None)
        return str(data.name), fields
    if kind_name == "function":
        fields = {"input": data.input, "output": data.output, "mcp_data": get(data, "mcp_data", None)}
        return str(data.name), fields
    if kind_name == "mcp_tools":
        server = get(data, "server", None)
        return f"list_tools {server}", {"server": server, "result": list(get(data, "result", None) or ())}
    if kind_name == "handoff":
        source, target = data.from_agent, data.to_agent
        return f"handoff {source} -> {target}", {"from_agent": source, "to_agent": target}
    if kind_name == "guardrail":
        return str(data.name), {"triggered": bool(data.triggered)}
    if kind_name == "custom":
        payload = get(data, "data", None)
        return str(data.name), {"data": dict(payload) if isinstance(payload, Mapping) else None}
    return str(get(data, "name", None) or kind_name.replace("_", " ")), {}


# ---- registration with the SDK -----------------------------------------------------------------

_processor: Any = None  # ours, made once the SDK is imported; stays registered while instrumented
_replaced: tuple[Any, ...] | None = None  # the SDK's processors that "exclusive" took out
_wanted: tuple[Callable[[Any], None], bool] | None = None  # (sink, exclusive) asked for by instrument()
_hooked = False


def install(sink: Callable[[Any], None], exclusive: bool) -> None:
    """Register our processor now if the Agents SDK is imported, else when it is."""
    global _wanted, _hooked
    _wanted = (sink, exclusive)
    if MODULE in sys.modules and "agents.tracing" in sys.modules:
        _on_import(sys.modules[MODULE])
    elif not _hooked:
        _hooked = True
        wrapt.register_post_import_hook(_on_import, MODULE)


def _on_import(module: Any) -> None:
    with contained("registering with the Agents SDK"):
        wanted = _wanted
        if wanted is None:
            return
        try:  # another package may be called `agents`: only the OpenAI Agents SDK has these
            from agents import tracing  # type: ignore[import-not-found,unused-ignore]
            from agents.tracing import scope  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return
        if not hasattr(tracing, "TracingProcessor") or not hasattr(scope, "_current_span"):
            log_once(
                "agents-shape",
                "respan_instrument: this Agents SDK has no tracing processors; not tracing its runs",
            )
            return
        _register(tracing, scope, *wanted)


def _register(tracing: Any, scope: Any, sink: Callable[[Any], None], exclusive: bool) -> None:
    global _processor, _replaced
    if _processor is None:
        _processor = type("RespanTracingProcessor", (Spans, tracing.TracingProcessor), {})()
    _processor.sink = sink
    processors = _registered(tracing)
    if exclusive:
        if _replaced is None:
            _replaced = tuple(p for p in processors or () if p is not _processor)
        tracing.set_trace_processors([_processor])
    else:
        if _replaced is not None:  # exclusive before, not now: give the SDK its own back
            tracing.set_trace_processors([*_replaced, _processor])
            _replaced = None
        elif processors is None or _processor not in processors:
            tracing.add_trace_processor(_processor)
    _run.current_span, _run.current_trace = scope._current_span, scope._current_trace
    _run.active = _processor
    _realtime_agents.apply()
    _socket_agents.apply()


def uninstall() -> None:
    """Take our processor out (or leave it inert where the SDK cannot say which are registered),
    and give back the processors that "exclusive" replaced."""
    global _replaced, _wanted
    _wanted = None
    _run.active = _run.current_span = _run.current_trace = None
    _realtime_agents.remove()
    _socket_agents.remove()
    processor = _processor
    if processor is None:
        return
    processor.sink = None
    with contained("unregistering from the Agents SDK"):
        tracing = sys.modules.get("agents.tracing")
        processors = _registered(tracing) if tracing is not None else None
        if tracing is not None and (processors is not None or _replaced is not None):
            kept = [p for p in processors or () if p is not processor]
            tracing.set_trace_processors([*(_replaced or ()), *kept])
        _replaced = None
    processor._open.clear()
    processor._live.clear()


def _registered(tracing: Any) -> tuple[Any, ...] | None:
    """The processors the SDK's default provider runs (a private tuple: None when it is not
    there, e.g. an app's own TraceProvider)."""
    provider = tracing.get_trace_provider()
    multi = getattr(provider, "_multi_processor", None)
    processors = getattr(multi, "_processors", None)
    return tuple(processors) if isinstance(processors, (tuple, list)) else None
