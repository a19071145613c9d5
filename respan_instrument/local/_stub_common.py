"""Shared helpers for the OpenAI stub payload builders (text, usage, ids, SSE events)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JSON",
    "USAGE_KEYS",
    "CallSpec",
    "Reply",
    "SSEvent",
    "Usage",
    "count_words",
    "default_reply",
    "encode_sse",
    "make_usage",
    "new_id",
    "resolve_model",
    "split_text",
    "text_of",
]

JSON = dict[str, Any]

#: Request model -> model name the stub reports back (like the real API's dated snapshots).
DATED_MODELS: dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "o3-mini": "o3-mini-2025-01-31",
}

USAGE_KEYS = frozenset(
    {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "input_tokens",
        "output_tokens",
        "cache_write_tokens",
    }
)


@dataclass(frozen=True)
class CallSpec:
    """Everything a payload builder needs to answer one request."""

    body: JSON
    model: str
    reply: str | None = None
    usage: Mapping[str, int] = field(default_factory=dict)
    chunks: int = 5


@dataclass(frozen=True)
class SSEvent:
    """One server-sent event; ``content`` marks events that carry generated output."""

    data: JSON | str
    event: str | None = None
    content: bool = False


@dataclass(frozen=True)
class Reply:
    """What a route answers: JSON, raw bytes of a content type, or a stream of server-sent events."""

    json: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    events: Iterator[SSEvent] | None = None
    status: int = 200


@dataclass(frozen=True)
class Usage:
    """Token usage of one call, rendered per API flavour."""

    prompt: int
    completion: int
    total: int
    cached: int = 0
    reasoning: int = 0

    def chat(self) -> JSON:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.total,
            "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def responses(self) -> JSON:
        return {
            "input_tokens": self.prompt,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.completion,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.total,
        }

    def completions(self) -> JSON:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.total,
        }


def make_usage(prompt_default: int, completion_words: int, override: Mapping[str, int]) -> Usage:
    """Deterministic usage; any key of ``USAGE_KEYS`` in ``override`` wins."""
    reasoning = int(override.get("reasoning_tokens", 0))
    cached = int(override.get("cached_tokens", 0))
    prompt = int(override.get("prompt_tokens", override.get("input_tokens", prompt_default)))
    completion = int(
        override.get("completion_tokens", override.get("output_tokens", completion_words + reasoning))
    )
    total = int(override.get("total_tokens", prompt + completion))
    return Usage(prompt=prompt, completion=completion, total=total, cached=cached, reasoning=reasoning)


def resolve_model(model: str) -> str:
    """The model name reported in answers (dated snapshot for a few well-known aliases)."""
    return DATED_MODELS.get(model, model)


def new_id(prefix: str) -> str:
    """A random id with an OpenAI-style prefix (``chatcmpl-``, ``resp_``, ...)."""
    return f"{prefix}{uuid.uuid4().hex}"


def text_of(value: object) -> str:
    """Concatenated text of a message content / input item / list of parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(t for t in (text_of(v) for v in value) if t)
    if isinstance(value, dict):
        for key in ("text", "content", "output"):
            if key in value:
                return text_of(value[key])
    return ""


def count_words(text: str) -> int:
    """Number of whitespace-separated words."""
    return len(text.split())


def default_reply(user_text: str) -> str:
    """The stub's default answer to a user message."""
    text = " ".join(user_text.split())
    return f"Echo: {text}" if text else "Echo"


def split_text(text: str, parts: int) -> list[str]:
    """Split ``text`` into exactly ``parts`` consecutive pieces (some may be empty)."""
    parts = max(1, parts)
    size = len(text)
    return [text[i * size // parts : (i + 1) * size // parts] for i in range(parts)]


def encode_sse(event: SSEvent) -> bytes:
    """Wire format of one server-sent event."""
    data = event.data if isinstance(event.data, str) else json.dumps(event.data, separators=(",", ":"))
    head = f"event: {event.event}\n" if event.event else ""
    return f"{head}data: {data}\n\n".encode()
