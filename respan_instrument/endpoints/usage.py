"""Token counts of one call: `TokenUsage`, and the one reader of a provider's usage object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .fields import fields_of

# A NamedTuple built by its class's generated Python __new__ costs twice the tuple itself; where
# one is built for every log, it is built as the tuple (all fields, in order).
NEW_TUPLE: Any = tuple.__new__


class TokenUsage(NamedTuple):
    """Token counts of one call, as the provider reported them.

    Sub-counts are parts of their totals, as in OpenAI's usage objects:
    `cached_input_tokens`, `cache_write_tokens`, `input_audio_tokens` and
    `input_image_tokens` are included in `input_tokens`; `reasoning_tokens`,
    `output_audio_tokens` and `output_image_tokens` are included in
    `output_tokens` (so reasoning is priced as output and never counted twice);
    `cached_audio_tokens` / `cached_image_tokens` are the audio / image part of
    `cached_input_tokens` (Realtime API).
    """

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cache_write_tokens: int = 0
    cached_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    cached_image_tokens: int = 0


# How an endpoint spells its usage: input total, output total, and their detail objects.
UsageNames = tuple[str, str, str, str]
CHAT_NAMES: UsageNames = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)


def _int(value: Any) -> int:
    return value if type(value) is int else 0  # (not a bool, nor None for a count not sent)


def parse(usage: Any, names: UsageNames = CHAT_NAMES) -> TokenUsage | None:
    """Token counts from a usage object or its JSON (typed reads, no model_dump); None when it
    has no input total. Detail fields a provider does not send count 0."""
    if usage is None:
        return None
    u = fields_of(usage)
    total_in, total_out, in_name, out_name = names
    inp = u.get(total_in)
    if not isinstance(inp, int):
        return None
    cached = in_audio = in_image = cached_audio = cached_image = reasoning = out_audio = written = 0
    in_details = u.get(in_name)
    if in_details is not None:
        d = fields_of(in_details)
        cached = _int(d.get("cached_tokens"))
        # tokens written to the prompt cache, at the model's cache-write rate; their retention
        # split (`cache_write_tokens_details`) stays in the logged usage: genai-prices has one
        # cache-write rate per OpenAI model
        written = _int(d.get("cache_write_tokens"))
        if not written and type(in_details) is not dict and "cache_write_tokens" not in d:
            # an SDK that does not declare the field keeps it among the model's extras
            extra = getattr(in_details, "__pydantic_extra__", None)
            written = _int(extra.get("cache_write_tokens")) if extra else 0
        in_audio = _int(d.get("audio_tokens"))
        in_image = _int(d.get("image_tokens"))
        cached_details = d.get("cached_tokens_details")
        if cached_details is not None:  # Realtime: the audio and image parts of cached input
            c = fields_of(cached_details)
            cached_audio = _int(c.get("audio_tokens"))
            cached_image = _int(c.get("image_tokens"))
    out_details = u.get(out_name)
    if out_details is not None:
        d = fields_of(out_details)
        reasoning = _int(d.get("reasoning_tokens"))
        out_audio = _int(d.get("audio_tokens"))
    # the tuple itself, in field order: a parse per log, and TokenUsage() would add a call of
    # its generated Python __new__ (and keywords a third more)
    tokens: TokenUsage = NEW_TUPLE(
        TokenUsage,
        (
            inp,
            _int(u.get(total_out)),
            cached,
            reasoning,
            in_audio,
            out_audio,
            written,
            cached_audio,
            in_image,
            0,  # output_image_tokens: see images.py
            cached_image,
        ),
    )
    return tokens


def as_token_usage(usage: Any) -> TokenUsage | None:
    """A TokenUsage from a mapping or an object spelled with TokenUsage's own field names (a
    caller's hand-made usage); None if impossible."""
    fields = TokenUsage._fields
    try:
        if isinstance(usage, Mapping):
            return TokenUsage(**{k: usage[k] for k in fields if usage.get(k) is not None})
        return TokenUsage(**{k: v for k in fields if (v := getattr(usage, k, None)) is not None})
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


__all__ = ["CHAT_NAMES", "NEW_TUPLE", "TokenUsage", "UsageNames", "as_token_usage", "parse"]
