"""A Live API session (`live.connect()`, `live.sideband.connect()`, `live.forks.connect()`) as one
`chat` log: a spoken conversation billed per second of session.

A Live session is no HTTP call, so this spec is not in the HTTP registry: the capture side builds
the request (`{"model", "instructions"}`) and the response (`{"id", "model", "usage", "reason",
"heard", "said"}`: the session's final usage as the server reported it, why it closed, and the
transcripts of what was heard and said). Its usage is seconds, not tokens (`seconds`, with
`active_seconds` / `paused_seconds` where given), priced per audio time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, get
from .bill import Line, Priced
from .usage import TokenUsage


class Live(Endpoint):
    path = "live"  # (a websocket session: never matched against an HTTP request's URL)
    operation = "chat"
    log_type = "chat"
    request_fields: frozenset[str] = frozenset()
    stream_usage = False
    taps_streams = False
    finish_field = "reason"

    def usage(self, usage: Any) -> TokenUsage | None:
        return None  # (seconds of session, not tokens: see `price`)

    def bill(self, call: Priced) -> list[Line]:
        """The session's billable seconds at the model's price per audio time."""
        seconds = get(get(call.response, "usage"), "seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            return []
        return [Line("audio", call.model, "audio_minute", seconds / 60.0)]

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        messages = []
        instructions = request.get("instructions")
        if isinstance(instructions, str) and instructions:
            messages.append({"role": "system", "content": instructions})
        heard = get(response, "heard")
        if isinstance(heard, str) and heard:
            messages.append({"role": "user", "content": heard})
        if messages:
            log["prompt_messages"] = messages
        said = get(response, "said")
        if isinstance(said, str) and said:
            log["completion_message"] = {"role": "assistant", "content": said}


LIVE = Live()
