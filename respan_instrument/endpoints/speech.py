"""Text to speech (`/audio/speech`): a speech log with the text, the voice and a placeholder
for the audio answered (never its bytes); tokens when the answer counts them (SSE), else the
characters of the input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, size_text
from .bill import Line, Priced, unit

_DONE = b'"speech.audio.done"'

# Characters of input: genai-prices' per-character prices, else OpenAI's published ones; read
# from https://openai.com/api/pricing.
PER_1M_CHARACTERS = unit(
    "1m_characters",
    "per_1m_characters",
    genai_keys=("input_mchars",),
    scale=1_000_000.0,
    published={"tts-1": {None: 15.0}, "tts-1-hd": {None: 30.0}},
    read_on="2026-12-05",
)


class Voice:
    """What a log needs of the audio answered: its media type and size, and the usage an SSE
    answer ends with."""

    __slots__ = ("model", "usage", "media_type", "size")

    def __init__(self, media_type: str | None, size: int | None, usage: Any = None) -> None:
        self.model = None
        self.usage = usage
        self.media_type = media_type
        self.size = size

    def placeholder(self) -> str:
        media = self.media_type or "audio"
        return f"[audio: {media}, {size_text(self.size)}]" if self.size is not None else f"[audio: {media}]"


def _usage_of_sse(body: bytes) -> Any:
    """The usage of an SSE answer's `speech.audio.done` event, found from the end: the deltas
    before it are the audio, which is never parsed."""
    at = body.rfind(_DONE)
    if at < 0:
        return None
    start = body.rfind(b"data:", 0, at)
    end = body.find(b"\n", at)
    try:
        event = json.loads(body[start + 5 : end if end >= 0 else len(body)])
    except ValueError:
        return None
    return event.get("usage") if isinstance(event, dict) else None


class Speech(Endpoint):
    routes = ("/audio/speech",)
    operation = "speech"
    log_type = "speech"
    request_fields = frozenset({"voice", "response_format", "speed", "stream_format"})
    usage_names = ("input_tokens", "output_tokens", "input_token_details", "output_token_details")
    keeps_body = False  # audio
    stream_usage = False
    price_units = (PER_1M_CHARACTERS,)
    events_when = ("stream_format", "sse")
    first_output_marker = b'"speech.audio.delta"'

    def summary(self, response: Any, http: Any) -> Any:
        """From the HTTP response: the body when it was read (a binary answer), else its
        headers' content type and length (a body the user streamed to a file)."""
        if isinstance(response, Voice):
            return response
        if http is None:
            http = getattr(response, "response", None)  # the SDK's HttpxBinaryResponseContent
        if http is None:
            return None
        headers = getattr(http, "headers", None) or {}
        media = headers.get("content-type")
        media = media.split(";", 1)[0].strip() if isinstance(media, str) else None
        body = _read(http)
        if body is None and media == "text/event-stream":  # read by the app: its timed tail
            tail = getattr(getattr(http, "stream", None), "tail", None)
            return Voice(None, None, _usage_of_sse(tail) if isinstance(tail, bytes) else None)
        if body is None:
            length = headers.get("content-length")
            return Voice(media, int(length) if isinstance(length, str) and length.isdigit() else None)
        if media == "text/event-stream":
            return Voice(None, None, _usage_of_sse(body))
        return Voice(media, len(body))

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None

    def bill(self, call: Priced) -> list[Line]:
        if call.usage is not None:
            return super().bill(call)
        text = call.request.get("input")
        if not isinstance(text, str):
            return []
        return [Line("characters", call.model, "1m_characters", len(text) / 1_000_000)]

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        if "input" in request:
            log["input"] = request["input"]
        if request.get("instructions"):
            log["instructions"] = request["instructions"]
        if isinstance(response, Voice):
            log["output"] = response.placeholder()


def _read(http: Any) -> bytes | None:
    """The body if it was read already; never reads it."""
    try:
        body = http.content
    except Exception:  # noqa: BLE001 - not read (a streamed body): its headers tell what they can
        return None
    return body if isinstance(body, bytes) else None


SPEECH = Speech()
