"""Realtime sessions (`realtime.connect()`, GA and beta): each model response as a chat log, and
each input-audio transcription as a transcription log.

The work per event on the app's loop is kept to a substring test on the message's first bytes
for the many deltas (audio deltas are never parsed, never kept); only the few events that shape
a log (session, conversation items, transcripts, `response.created` / `response.done`) are
parsed. A response's log is built from its `response.done`, which holds its text, transcripts
and tool calls; the deltas are kept only to log a response cut short with what arrived.
A transcription's log is built from its `...input_audio_transcription.completed`, which carries
its usage (tokens, or seconds of audio) at the transcription model's rate; a transcription-only
session makes only those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .._errors import contained
from ..endpoints.base import get
from ..endpoints.realtime import REALTIME, REALTIME_TRANSCRIPTION, message_of
from ..record.call_record import CallRecord
from .sockets import Protocol, Recorder, message
from .traced_call import Hooks

_IN_SESSION_EVENT = contained("reading a realtime event")
_IN_FINISHING = contained("logging a realtime response")
_SKIPPED_SENT = frozenset({"input_audio_buffer.append", "input_audio_buffer.clear", "response.cancel"})
_ITEM_EVENTS = frozenset(
    {
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
    }
)
_SESSION_EVENTS = frozenset(
    {"session.created", "session.updated", "transcription_session.created", "transcription_session.updated"}
)
# the only events parsed on the app's thread: those that shape a log
_PARSED = (
    b'"session.',
    b"transcription_session.",
    b'"conversation.item.',
    b'"input_audio_buffer.committed"',
    b'"response.created"',
    b'"response.done"',
)


def _lean_item(item: Any) -> dict[str, Any]:
    """What a log needs of a conversation item: never an audio part's bytes."""
    kept = {
        k: item.get(k) for k in ("id", "type", "role", "call_id", "name", "arguments", "output") if k in item
    }
    parts = item.get("content")
    if isinstance(parts, list):
        kept["content"] = [
            {k: p.get(k) for k in ("type", "text", "transcript") if k in p}
            for p in parts
            if isinstance(p, dict)
        ]
    return kept


class _Response:
    """One response in flight."""

    __slots__ = ("start_ns", "ttft_ns", "deltas", "id")

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.ttft_ns: int | None = None
        self.deltas: list[bytes] = []  # text, transcript and arguments deltas, for a cut-short log
        self.id: str | None = None


class Session(Recorder):
    """A realtime connection's conversation, and the response in flight."""

    __slots__ = ("session_id", "model", "transcriber", "items", "committed", "current")
    parsed = _PARSED
    reading = _IN_SESSION_EVENT

    def __init__(self, hooks: Hooks, ctx: Any, scope: Mapping[str, Any]) -> None:
        super().__init__(hooks, ctx, scope)
        self.session_id: str | None = None
        self.model: str | None = None
        self.transcriber: str | None = None  # the input-audio transcription model
        self.items: dict[str, dict[str, Any]] = {}
        self.committed: dict[str, int] = {}  # item id -> when its input audio was committed
        self.current: _Response | None = None

    # ---- the app's thread / loop -----------------------------------------------------------
    def received(self, data: Any) -> None:
        got = message(data)
        if got is None:
            return
        data, head = got
        if b'delta"' in head:
            current = self.current
            if current is not None and b'"response.' in head:
                if current.ttft_ns is None:
                    current.ttft_ns = time.time_ns()
                if b"audio.delta" not in head:
                    current.deltas.append(data)
            return
        self.read(data, head)

    def sent(self, event: Any) -> None:
        kind = event.get("type") if type(event) is dict else getattr(event, "type", None)
        if kind in _SKIPPED_SENT:
            return
        with _IN_SESSION_EVENT:
            if kind == "response.create":
                if self.current is None:
                    self.current = _Response(time.time_ns())
            elif kind == "session.update":
                session = event.get("session") if type(event) is dict else getattr(event, "session", None)
                if session is not None:
                    self._configured(session, sent=True)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in _ITEM_EVENTS:
            item = event.get("item")
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self.items[item["id"]] = _lean_item(item)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._transcribed(event)
        elif kind == "conversation.item.deleted":
            self.items.pop(event.get("item_id"), None)  # type: ignore[arg-type]
        elif kind == "response.created":
            if self.current is None:  # the server started it (voice activity detection)
                self.current = _Response(time.time_ns())
            response = event.get("response")
            self.current.id = get(response, "id") if isinstance(response, dict) else None
        elif kind == "response.done":
            response = event.get("response")
            if isinstance(response, dict):
                self.finish(response, False)
        elif kind == "input_audio_buffer.committed":
            item_id = event.get("item_id")
            if isinstance(item_id, str) and self.transcriber is not None:  # (else none comes)
                self.committed[item_id] = time.time_ns()
        elif kind in _SESSION_EVENTS:
            session = event.get("session")
            if isinstance(session, dict):
                if isinstance(session.get("id"), str):
                    self.session_id = session["id"]
                self._configured(session, sent=False)

    def _configured(self, session: Any, sent: bool) -> None:
        """The models a session (or an update the app sent) names: the conversation's, and
        the input-audio transcription's (GA: `audio.input.transcription`; beta:
        `input_audio_transcription`)."""
        model = get(session, "model")
        # (a transcription-only session's own model is its transcription model's)
        if isinstance(model, str) and get(session, "type") != "transcription":
            self.model = model
        transcription = get(get(get(session, "audio"), "input"), "transcription")
        if transcription is None:
            transcription = get(session, "input_audio_transcription")
        model = get(transcription, "model")
        if isinstance(model, str):
            self.transcriber = model

    def _transcribed(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        item = self.items.get(item_id)  # type: ignore[arg-type]
        index, transcript = event.get("content_index"), event.get("transcript")
        parts = item.get("content") if item is not None else None
        if isinstance(parts, list) and isinstance(index, int) and 0 <= index < len(parts):
            parts[index]["transcript"] = transcript
        end_ns = time.time_ns()
        start_ns = self.committed.pop(item_id, end_ns) if isinstance(item_id, str) else end_ns
        model = self.transcriber or "unknown"
        record = CallRecord(
            REALTIME_TRANSCRIPTION,
            {"model": model},
            "",
            start_ns,
            f"{REALTIME_TRANSCRIPTION.operation} {model}",
            self.attributes(self.session_id, realtime="true"),
        )
        record.end_ns = end_ns
        record.response = {"model": model, "text": transcript, "usage": event.get("usage")}
        self.hand_over(record)

    # ---- a response ends -------------------------------------------------------------------
    def closed(self) -> None:
        """The connection closed (either side) or was dropped: log what arrived, once."""
        if self.current is not None:
            with _IN_FINISHING:
                self.finish(None, True)

    def finish(self, response: dict[str, Any] | None, cut_short: bool) -> None:
        current, self.current = self.current, None
        end_ns = time.time_ns()
        if current is None:
            current = _Response(end_ns)  # a response.done without its start (connected late)
        if response is None:
            response = _arrived(current)
        output_ids = {get(item, "id") for item in response.get("output") or () if isinstance(item, dict)}
        messages = [
            m for i, item in self.items.items() if i not in output_ids for m in (message_of(item),) if m
        ]
        for item in response.get("output") or ():  # the conversation goes on with this response
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self.items[item["id"]] = _lean_item(item)
        model = self.model or "unknown"
        if not isinstance(response.get("model"), str):
            response = {**response, "model": model}
        record = CallRecord(
            REALTIME,
            {"model": model, "messages": messages},
            "",
            current.start_ns,
            f"chat {model}",
            self.attributes(self.session_id, realtime="true"),
        )
        record.end_ns = end_ns
        record.ttft_ns = current.ttft_ns
        record.response = response
        record.cut_short = cut_short
        details = response.get("status_details")
        if response.get("status") == "failed":
            record.error = REALTIME.stream_error(get(details, "error") if isinstance(details, dict) else None)
        self.hand_over(record)


def _arrived(current: _Response) -> dict[str, Any]:
    """A response cut short, shaped like `response.done`'s, from the deltas that arrived."""
    text: list[str] = []
    calls: dict[str, dict[str, Any]] = {}
    for data in current.deltas:
        event = json.loads(data)
        kind, delta = event.get("type", ""), event.get("delta")
        if not isinstance(delta, str):
            continue
        if kind.endswith("function_call_arguments.delta"):
            key = event.get("call_id") or event.get("item_id") or ""
            call = calls.setdefault(
                key, {"type": "function_call", "call_id": event.get("call_id"), "arguments": ""}
            )
            call["arguments"] += delta
        else:
            text.append(delta)
    output: list[dict[str, Any]] = []
    if text:
        output.append(
            {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "".join(text)}]}
        )
    output.extend(calls.values())
    return {"id": current.id, "status": "incomplete", "output": output}


PROTOCOL = Protocol(
    # GA first; the beta module only where the installed SDK still has it
    (
        ("openai.resources.realtime.realtime", "RealtimeConnection"),
        ("openai.resources.beta.realtime.realtime", "RealtimeConnection"),
    ),
    Session,
)
