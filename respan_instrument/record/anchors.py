"""Where a log made inside an OpenAI Agents SDK run hangs: the run, and the anchor in its trace.

A model call made inside a run carries an `Anchor` in its record (`CallRecord.anchor`), as does
every trace and span of the run (`record.agents.AgentSpan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Run:
    """What every log of one Agents trace shares."""

    __slots__ = ("name", "group", "metadata")

    def __init__(self, name: str, group: str | None, metadata: Mapping[str, Any] | None) -> None:
        self.name = name
        self.group = group  # RunConfig.group_id / trace(group_id=): the thread, unless attributes() set one
        self.metadata = metadata


class Anchor(NamedTuple):
    """Where a log made inside a run hangs: the run's trace id and the span id of the nearest
    ancestor that makes a log of its own."""

    trace_id: int
    span_id: int
    run: Run


__all__ = ["Anchor", "Run"]
