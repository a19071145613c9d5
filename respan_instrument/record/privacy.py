"""What content a log may carry, decided once for every kind of log (SPEC §16).

Three settings meet here: content capture (`RESPAN_CAPTURE_CONTENT`, overridden per call by
`attributes(capture_content=...)`), the sample rate of traces that keep their content
(`RESPAN_SAMPLE_RATE`), and the redactor every content string passes through (`redact=`,
`RESPAN_REDACT=pii`). The redactor runs here, on the worker, before a log is encoded: so before
it is spooled, sent, or made a span we export. Every log kind, a call's log, a `log()` dict, or
any other log built on the worker, goes through `Privacy.redacted` over the same fields.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .._errors import log_once
from .agent_spans import NO_MODEL
from .truncate import is_inline_data

# the fields that carry the conversation, left out when a call keeps no content
CONTENT = (
    "prompt_messages",
    "completion_message",
    "completion_messages",
    "input",
    "output",
    "instructions",
    "tool_calls",
)
# what the redactor reads: the content, and an error's message (an API error may quote it)
REDACTED = (*CONTENT, "error_message")
# content an Agents SDK span's log carries in its metadata: the SDK's error details (a tool's
# error text), and the whole of a custom span's data (a `task` log; free-form, the app's own)
METADATA_CONTENT = ("error_data",)
# strings inside content that name its structure, not what anyone said: never redacted
STRUCTURE = frozenset(
    {
        "role",
        "type",
        "id",
        "call_id",
        "tool_call_id",
        "finish_reason",
        "status",
        "object",
        "model",
        "modality",
        "format",
        "detail",
        "mime_type",
    }
)
_LOW_64 = (1 << 64) - 1


class Manual(NamedTuple):
    """A `log()` dict made inside `attributes(capture_content=...)`: the choice travels beside
    the log, never in it."""

    log: dict[str, Any]
    capture: bool


class RedactorFailed(Exception):
    """The redactor raised, or returned something other than a string."""


class Privacy:
    """The process's content settings: whether content is captured, the sample rate as a bound on
    a trace id's low 64 bits (as OpenTelemetry's `TraceIdRatioBased` sampler compares them, so
    a trace keeps its content whole, in every process that shares the rate), and the redactor."""

    __slots__ = ("capture", "bound", "redactor")

    def __init__(
        self, capture: bool, sample_rate: float = 1.0, redactor: Callable[[str], str] | None = None
    ) -> None:
        self.capture = capture
        self.bound = round(sample_rate * (1 << 64))
        self.redactor = redactor

    def keeps(self, trace_id: int, capture: bool | None = None) -> bool:
        """Whether a call in trace `trace_id` keeps its content. `capture` is the call's own
        `attributes(capture_content=...)`: False drops it, True keeps it whatever the process
        setting and the sample rate say."""
        if capture is not None:
            return capture
        return self.capture and (trace_id & _LOW_64) < self.bound

    def keeps_log(self, log: Mapping[str, Any], capture: bool | None = None) -> bool:
        """`keeps` for a hand-built log: its trace is its `trace_unique_id` (none: its own)."""
        if capture is not None:
            return capture
        if not self.capture or self.bound > _LOW_64:
            return self.capture
        trace = log.get("trace_unique_id")
        try:
            trace_id = int(trace, 16) if isinstance(trace, str) else random.getrandbits(64)
        except ValueError:
            trace_id = random.getrandbits(64)
        return (trace_id & _LOW_64) < self.bound

    def hand_built(self, item: dict[str, Any] | Manual) -> dict[str, Any]:
        """A `log()` log as it may leave: its content kept or left out, then redacted."""
        log, capture = (item.log, item.capture) if isinstance(item, Manual) else (item, None)
        if not self.keeps_log(log, capture):
            log = without_content(log)
        return self.redacted(log)

    def redacted(self, log: dict[str, Any]) -> dict[str, Any]:
        """`log` with every content string passed through the redactor (the content values that
        changed are copies: what they came from, the caller's own objects among them, is never
        written to). When the redactor fails, the log without its content and error message."""
        redactor = self.redactor
        if redactor is None:
            return log
        try:
            changed = {}
            for key in REDACTED:
                value = log.get(key)
                if value is not None:
                    new = _redacted(value, redactor)
                    if new is not value:
                        changed[key] = new
            metadata = _metadata_content(log)
            if metadata:
                new = _redacted({key: log["metadata"][key] for key in metadata}, redactor)
                changed["metadata"] = {**log["metadata"], **new}
        except Exception as exc:  # noqa: BLE001 - the user's function: drop the content, keep the log
            log_once(
                "redactor-failed",
                "respan_instrument: the redact function failed (%s); logs it fails on are sent "
                "without their content",
                str(exc) if isinstance(exc, RedactorFailed) else f"raised {type(exc).__name__}",
            )
            out = without_content(log)
            out.pop("error_message", None)
            dropped = _metadata_content(log)
            if dropped:
                out["metadata"] = {k: v for k, v in log["metadata"].items() if k not in dropped}
            return out
        if changed:
            log = {**log, **changed}
        return log


class NoContent(Privacy):
    """For a log a caller's thread must build while a redactor is set (the writer far behind):
    no content and no error message, since the redactor runs on the worker only."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(False, 0.0, None)

    def keeps(self, trace_id: int, capture: bool | None = None) -> bool:
        return False

    def keeps_log(self, log: Mapping[str, Any], capture: bool | None = None) -> bool:
        return False

    def redacted(self, log: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in log.items() if key not in REDACTED}


def _metadata_content(log: Mapping[str, Any]) -> list[str]:
    """The keys of `log`'s metadata that hold content (an Agents span's log only)."""
    metadata = log.get("metadata")
    if not isinstance(metadata, Mapping) or log.get("model") != NO_MODEL:
        return []
    if log.get("log_type") == "task":
        return list(metadata)
    return [key for key in METADATA_CONTENT if key in metadata]


def without_content(log: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `log` with no content fields."""
    return {key: value for key, value in log.items() if key not in CONTENT}


def _redacted(value: Any, redactor: Callable[[str], str]) -> Any:
    """`value` with each string through `redactor`: the same object where nothing changed."""
    if isinstance(value, str):
        if is_inline_data(value):
            return value  # replaced by a placeholder of its media type and size when encoded
        new = redactor(value)
        if not isinstance(new, str):
            raise RedactorFailed(f"returned a {type(new).__name__}, not a string")
        return value if new == value else new
    if isinstance(value, Mapping):
        out: dict[str, Any] | None = None
        for key, item in value.items():
            if key in STRUCTURE and isinstance(item, str):
                continue
            new = _redacted(item, redactor)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        if out is not None:
            return out
        return value if isinstance(value, dict) else dict(value)
    if isinstance(value, (list, tuple)):
        items = [_redacted(item, redactor) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return items
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # anything else is encoded as its string form: redact that
    return _redacted(str(value), redactor)


__all__ = ["CONTENT", "REDACTED", "Manual", "NoContent", "Privacy", "without_content"]
