"""Realtime sessions: a model response (`response.create` → `response.done`) as a chat log, an
input-audio transcription as a transcription log, and a translation session
(`realtime.translations.connect()`) as a transcription log.

A realtime session is no HTTP call, so these specs are not in the HTTP registry: the capture side
builds the request (`{"model": ..., "messages": [...]}`, the conversation so far as chat
messages) and hands the `response.done` response (or what arrived of it) as the response.
Audio is never logged: an audio part shows its transcript, or a placeholder when it has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .audio import Transcriptions
from .base import Endpoint, FilePart, get

AUDIO_PLACEHOLDER = "[audio: no transcript]"
INPUT_AUDIO_PLACEHOLDER = "[audio: realtime input audio]"
_TEXT_PARTS = ("input_text", "text", "output_text")
_AUDIO_PARTS = ("input_audio", "audio", "output_audio")


def part_text(part: Any) -> str | None:
    """The text of one content part: its text, an audio part's transcript, else a placeholder."""
    kind = get(part, "type")
    if kind in _TEXT_PARTS:
        text = get(part, "text")
        return text if isinstance(text, str) else None
    if kind in _AUDIO_PARTS:
        transcript = get(part, "transcript")
        return transcript if isinstance(transcript, str) and transcript else AUDIO_PLACEHOLDER
    return None


def message_of(item: Any) -> dict[str, Any] | None:
    """A conversation item as a chat message (None for an item a chat log cannot show)."""
    kind = get(item, "type")
    if kind == "message":
        texts = [t for t in (part_text(p) for p in get(item, "content") or ()) if t is not None]
        return {"role": get(item, "role") or "user", "content": "\n".join(texts)}
    if kind == "function_call":
        return {"role": "assistant", "content": None, "tool_calls": [tool_call(item)]}
    if kind == "function_call_output":
        return {"role": "tool", "tool_call_id": get(item, "call_id"), "content": get(item, "output")}
    return None


def tool_call(item: Any) -> dict[str, Any]:
    return {
        "id": get(item, "call_id"),
        "type": "function",
        "function": {"name": get(item, "name"), "arguments": get(item, "arguments") or ""},
    }


class Realtime(Endpoint):
    # (no `routes`: a websocket session, never matched against an HTTP request's URL)
    operation = "chat"
    log_type = "chat"
    request_fields = frozenset({"tools", "tool_choice", "temperature", "max_output_tokens"})
    usage_names = ("input_tokens", "output_tokens", "input_token_details", "output_token_details")
    stream_usage = False
    taps_streams = False
    finish_field = "status"

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        messages = request.get("messages")
        if messages:
            log["prompt_messages"] = messages
        if response is None:
            return
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for item in get(response, "output") or ():
            if get(item, "type") == "function_call":
                calls.append(tool_call(item))
            elif get(item, "type") == "message":
                texts.extend(t for t in (part_text(p) for p in get(item, "content") or ()) if t is not None)
        completion: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
        if calls:
            completion["tool_calls"] = calls
            log["tool_calls"] = calls
        log["completion_message"] = completion


REALTIME = Realtime()


class RealtimeTranscription(Transcriptions):
    """Input audio transcribed inside a realtime session (or a transcription-only one): the
    capture side hands `{"model": the transcription model}` as the request and
    `{"text", "usage", "model"}` from `conversation.item.input_audio_transcription.completed` as
    the response. Its usage is tokens (gpt-4o-transcribe family) or seconds of audio (whisper),
    priced as the HTTP transcription endpoint prices them."""

    path = "realtime transcription"  # (a websocket event: never matched against a URL)
    request_fields: frozenset[str] = frozenset()
    taps_streams = False

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        log["input"] = INPUT_AUDIO_PLACEHOLDER
        text = get(response, "text")
        if isinstance(text, str):
            log["output"] = text


REALTIME_TRANSCRIPTION = RealtimeTranscription()


class RealtimeTranslation(RealtimeTranscription):
    """A `realtime.translations.connect()` session as one transcription log: speech in, speech
    in another language out, billed per minute of session. The capture side hands
    `{"model", "language"}` as the request and `{"model", "usage": {"type": "duration",
    "seconds"}, "text", "heard"}` as the response: the session's time from open to close, the
    transcript of the translation and, when the session transcribes its input, of the input."""

    path = "realtime translation"  # (a websocket session: never matched against a URL)
    operation = "translation"
    request_fields = frozenset({"language"})

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        heard = get(response, "heard")
        log["input"] = heard if isinstance(heard, str) and heard else INPUT_AUDIO_PLACEHOLDER
        text = get(response, "text")
        if isinstance(text, str) and text:
            log["output"] = text


REALTIME_TRANSLATION = RealtimeTranslation()
