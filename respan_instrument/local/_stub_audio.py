"""Audio API payloads (transcriptions, translations, speech; JSON, text and streamed) for the stub."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping

from ._stub_common import JSON, CallSpec, Reply, SSEvent, count_words, split_text

__all__ = ["speech_reply", "transcription_reply"]

_TRANSCRIPT = "Hello from the stub."
_SECONDS = 2.5
_AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_DEFAULT_AUDIO_BYTES = 256
_MAX_AUDIO_BYTES = 1 << 20


def _token_usage(spec: CallSpec, text: str) -> JSON:
    audio = int(spec.usage.get("input_tokens", 20))
    prompt = count_words(str(spec.body.get("prompt") or ""))
    output = int(spec.usage.get("output_tokens", count_words(text)))
    return {
        "type": "tokens",
        "input_tokens": audio + prompt,
        "input_token_details": {"text_tokens": prompt, "audio_tokens": audio},
        "output_tokens": output,
        "total_tokens": int(spec.usage.get("total_tokens", audio + prompt + output)),
    }


def _usage(spec: CallSpec, text: str) -> JSON:
    """gpt-4o-*transcribe models bill tokens; whisper bills the seconds of audio."""
    if "transcribe" in spec.model:
        return _token_usage(spec, text)
    return {"type": "duration", "seconds": _SECONDS}


def _segment(text: str) -> JSON:
    return {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": _SECONDS,
        "text": text,
        "tokens": list(range(1, count_words(text) + 1)),
        "temperature": 0.0,
        "avg_logprob": -0.2,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.01,
    }


def _timed_text(fmt: str, text: str) -> str:
    if fmt == "srt":
        return f"1\n00:00:00,000 --> 00:00:02,500\n{text}\n\n"
    return f"WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n{text}\n\n"


def _transcript_stream(spec: CallSpec, text: str) -> Iterator[SSEvent]:
    for piece in split_text(text, spec.chunks):
        yield SSEvent({"type": "transcript.text.delta", "delta": piece}, None, True)
    yield SSEvent({"type": "transcript.text.done", "text": text, "usage": _token_usage(spec, text)})


def transcription_reply(kind: str, spec: CallSpec) -> Reply:
    """Answer ``audio/transcriptions`` or ``audio/translations`` in the requested format."""
    text = spec.reply if spec.reply is not None else _TRANSCRIPT
    fmt = str(spec.body.get("response_format") or "json")
    if kind == "transcriptions" and spec.body.get("stream") in (True, "true"):
        return Reply(events=_transcript_stream(spec, text))
    if fmt in ("text", "srt", "vtt"):
        plain = text if fmt == "text" else _timed_text(fmt, text)
        return Reply(raw=plain.encode("utf-8"), content_type="text/plain; charset=utf-8")
    if fmt == "verbose_json":
        verbose: JSON = {
            "task": "transcribe" if kind == "transcriptions" else "translate",
            "language": "english",
            "duration": _SECONDS,
            "text": text,
            "segments": [_segment(text)],
        }
        if kind == "transcriptions":
            verbose["usage"] = {"type": "duration", "seconds": _SECONDS}
        return Reply(json=verbose)
    answer: JSON = {"text": text}
    if kind == "transcriptions":
        answer["usage"] = _usage(spec, text)
    return Reply(json=answer)


def _audio_bytes(size: int) -> bytes:
    """Deterministic bytes (an ID3-like tag, then a counter) so a test can compare sizes and content."""
    pattern = bytes(range(256))
    data = b"ID3" + pattern * (size // 256 + 1)
    return data[:size]


def speech_reply(spec: CallSpec, headers: Mapping[str, str]) -> Reply:
    """Answer ``audio/speech``: raw audio, or ``speech.audio.delta`` events when ``stream_format`` is sse."""
    try:
        size = int(headers.get("x-stub-audio-bytes", _DEFAULT_AUDIO_BYTES))
    except ValueError:
        size = _DEFAULT_AUDIO_BYTES
    audio = _audio_bytes(max(0, min(size, _MAX_AUDIO_BYTES)))
    if spec.body.get("stream_format") == "sse":
        return Reply(events=_speech_stream(spec, audio))
    fmt = str(spec.body.get("response_format") or "mp3")
    return Reply(raw=audio, content_type=_AUDIO_TYPES.get(fmt, "application/octet-stream"))


def _speech_stream(spec: CallSpec, audio: bytes) -> Iterator[SSEvent]:
    pieces = [
        audio[i * len(audio) // spec.chunks : (i + 1) * len(audio) // spec.chunks] for i in range(spec.chunks)
    ]
    for piece in pieces:
        encoded = base64.b64encode(piece).decode("ascii")
        yield SSEvent({"type": "speech.audio.delta", "audio": encoded}, None, True)
    words = count_words(str(spec.body.get("input") or ""))
    prompt = int(spec.usage.get("input_tokens", max(1, words)))
    output = int(spec.usage.get("output_tokens", max(1, len(audio) // 16)))
    usage = {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": int(spec.usage.get("total_tokens", prompt + output)),
    }
    yield SSEvent({"type": "speech.audio.done", "usage": usage})
