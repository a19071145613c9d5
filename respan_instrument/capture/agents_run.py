"""The Agents SDK run, if any, that a model call is made in: what the openai capture reads.

Set by our tracing processor's registration (capture/agents_tracing.py) while one is registered and
active; read on the caller's thread where a call starts (capture/patch.py) and where a
Responses websocket sends `response.create` (capture/responses_socket.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..record.anchors import Anchor


class Anchoring(Protocol):
    """Our tracing processor (`capture.agents.Spans`), as a model call asks it where it hangs."""

    def anchor(self, span: Any, trace: Any) -> Anchor | None: ...


# the SDK's current span and trace (its context variables), and our processor
current_span: Any = None
current_trace: Any = None
active: Anchoring | None = None


def here() -> Anchor | None:
    """Where a model call made now hangs, when it is made inside an Agents run."""
    spans = active
    if spans is None or current_trace is None:
        return None
    run = current_trace.get()
    return spans.anchor(current_span.get(), run) if run is not None else None


__all__ = ["Anchoring", "active", "current_span", "current_trace", "here"]
