"""Audio to text (`/audio/transcriptions`, `/audio/translations`): a transcription log with a
placeholder for the audio sent (never its bytes), the text whatever `response_format` asked
for, tokens for the GPT-4o transcribe family and minutes of audio for Whisper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, Text, fields_of, get
from .bill import Line, Priced, unit

# Minutes of audio heard: genai-prices' per-audio-time prices (whisper, gpt-transcribe, realtime
# whisper, Live models), else OpenAI's published per-minute price; read from
# https://openai.com/api/pricing.
PER_AUDIO_MINUTE = unit(
    "audio_minute",
    "per_audio_minute",
    genai_keys=("input_audio_hours", "audio_hours"),
    scale=60.0,
    published={"whisper-1": {None: 0.006}},
    read_on="2026-12-05",
)


class Transcript:
    """A streamed transcription: text deltas, then the done event with the text and usage."""

    __slots__ = ("model", "usage", "text", "_deltas")

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: Any = None
        self.text: str | None = None
        self._deltas = Text()

    def add(self, event: Any) -> bool:
        e = fields_of(event)
        kind = e.get("type")
        if kind == "transcript.text.delta":
            delta = e.get("delta")
            if isinstance(delta, str) and delta:
                self._deltas.add(delta)
                return True
            return False
        if kind == "transcript.text.done":
            self.text = e.get("text")
            self.usage = e.get("usage") or self.usage
        return False

    def output(self) -> str:
        return self.text if isinstance(self.text, str) else self._deltas.value()


def _text_of(response: Any) -> str | None:
    """The text of any answer: json and verbose_json models (or their JSON), a stream's
    accumulator, or text / srt / vtt bodies, which the SDK returns as a str."""
    if isinstance(response, str):
        return response
    if isinstance(response, Transcript):
        return response.output()
    text = get(response, "text")
    return text if isinstance(text, str) else None


class Transcriptions(Endpoint):
    routes = ("/audio/transcriptions",)
    operation = "transcription"
    log_type = "transcription"
    request_fields = frozenset({"language", "response_format", "temperature", "timestamp_granularities"})
    usage_names = ("input_tokens", "output_tokens", "input_token_details", "output_token_details")
    stream_usage = False
    stream_errors = True
    price_units = (PER_AUDIO_MINUTE,)

    def accumulator(self) -> Transcript:
        return Transcript()

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None

    def bill(self, call: Priced) -> list[Line]:
        """Tokens when the answer counts them; else the minutes of audio it says it heard."""
        if call.usage is not None:
            return super().bill(call)
        seconds = _seconds(call.response)
        if seconds is None:
            return []
        return [Line("audio", call.model, "audio_minute", seconds / 60.0)]

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        shown: dict[str, Any] = {part.field: part.placeholder() for part in files}
        prompt = request.get("prompt")
        if prompt:
            shown["prompt"] = prompt
        if shown:
            log["input"] = shown
        text = _text_of(response)
        if text is not None:
            log["output"] = text


def _seconds(response: Any) -> float | None:
    """Seconds of audio: `usage` of type duration, else verbose_json's `duration`."""
    if response is None or isinstance(response, str):
        return None
    usage = get(response, "usage")
    seconds = get(usage, "seconds") if usage is not None else None
    if seconds is None:
        seconds = get(response, "duration")
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None


class Translations(Transcriptions):
    routes = ("/audio/translations",)
    operation = "translation"


TRANSCRIPTIONS = Transcriptions()
TRANSLATIONS = Translations()
