"""Realtime translation sessions (`realtime.translations.connect()`): each session is one
`transcription` log, timed from the connection's opening to its close (either side, or the
connection dropped), priced per minute of audio time at the translation model's rate.

The model is the one the connection was opened for (its URL's `model`), or the one
`session.created` names. Transcript deltas, when the session sends them, are the log's content;
audio deltas (the many events) cost a substring test and are never parsed. Messages the app reads
past `recv_bytes()` (the `recv(timeout=...)` of the SDK's `TranslationSession` helper reads the
socket directly) are not seen: the session is still logged, with its time, when it closes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._errors import contained
from ..endpoints.base import get
from ..endpoints.realtime import REALTIME_TRANSLATION
from ..record.call_record import CallRecord
from .sockets import Protocol, Recorder, message
from .traced_call import Hooks

_IN_EVENT = contained("reading a realtime translation event")
_PARSED = (b'"session.created"', b'"session.updated"', b'"session.closed"', b'transcript.delta"')


class Translation(Recorder):
    """A translation connection: its model, session id, target language and transcripts."""

    __slots__ = ("start_ns", "session_id", "model", "language", "heard", "said", "done")
    parsed = _PARSED
    reading = _IN_EVENT

    def __init__(self, hooks: Hooks, ctx: Any, scope: Mapping[str, Any]) -> None:
        super().__init__(hooks, ctx, scope)
        self.start_ns = time.time_ns()
        self.session_id: str | None = None
        self.model: str | None = None
        self.language: str | None = None
        self.heard: list[str] = []
        self.said: list[str] = []
        self.done = False

    def opened(self, connection: Any) -> None:
        request = getattr(getattr(connection, "_connection", None), "request", None)
        path = getattr(request, "path", None)
        if isinstance(path, str):
            models = parse_qs(urlsplit(path).query).get("model")
            if models:
                self.model = models[0]

    def received(self, data: Any) -> None:
        got = message(data)
        if got is None:
            return
        data, head = got
        if b'audio.delta"' not in head:
            self.read(data, head)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.input_transcript.delta" or kind == "session.output_transcript.delta":
            delta = event.get("delta")
            if isinstance(delta, str):
                (self.said if kind == "session.output_transcript.delta" else self.heard).append(delta)
        elif kind in ("session.created", "session.updated"):
            session = event.get("session")
            if isinstance(session, dict) and isinstance(session.get("id"), str):
                self.session_id = session["id"]
            model = get(session, "model")
            if isinstance(model, str):
                self.model = model
            language = get(get(get(session, "audio"), "output"), "language")
            if isinstance(language, str):
                self.language = language
        elif kind == "session.closed":
            self.closed()

    def closed(self) -> None:
        if self.done:
            return
        self.done = True
        end_ns = time.time_ns()
        model = self.model or "unknown"
        request: dict[str, Any] = {"model": model}
        if self.language:
            request["language"] = self.language
        seconds = round((end_ns - self.start_ns) / 1e9, 3)
        response: dict[str, Any] = {"model": model, "usage": {"type": "duration", "seconds": seconds}}
        if self.said:
            response["text"] = "".join(self.said)
        if self.heard:
            response["heard"] = "".join(self.heard)
        name = f"{REALTIME_TRANSLATION.operation} {model}"
        record = CallRecord(
            REALTIME_TRANSLATION, request, "", self.start_ns, name, self.attributes(self.session_id)
        )
        record.end_ns = end_ns
        record.stream = True
        record.response = response
        self.hand_over(record)


PROTOCOL = Protocol(
    (("openai.resources.realtime.translations.translations", "TranslationsConnection"),),
    Translation,
)
