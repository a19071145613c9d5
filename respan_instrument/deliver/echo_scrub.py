"""What of a destination's answer may be quoted on our logger: nothing of what we sent it.

A validation error may echo the value it found wrong, and the values we send are prompts,
completions and metadata. Before words of an answer reach a log line, each one that also occurs
in the bodies just posted is replaced by `…`, except the names of fields (the JSON keys of those
bodies): they say what was wrong without saying what it held. Words of one or two characters
stay, so that short codes and numbers do.

This runs only when an answer is about to be quoted (a refusal, a rejection, an outage), never
on an accepted post.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from .http import Reply

QUOTED_BYTES = 300  # most of an answer a log line quotes
MASK = "…"
_WORD = re.compile(r"\w{3,}")


class Quoting:
    """Scrubs text of what one post sent; the field names are read once, when first needed."""

    __slots__ = ("sent", "_keys")

    def __init__(self, sent: Sequence[bytes]) -> None:
        self.sent = sent
        self._keys: set[str] | None = None

    def text(self, text: str) -> str:
        """`text` with every word found in what was sent (other than a field name there) masked."""
        if not text or not self.sent:
            return text
        if self._keys is None:
            self._keys = _keys(self.sent)
        return _WORD.sub(self._mask, text)

    def reply(self, reply: Reply) -> Reply:
        """The reply with the part of its body that `describe()` quotes scrubbed."""
        if not reply.body:
            return reply
        text = reply.body[:QUOTED_BYTES].decode("utf-8", errors="replace")
        return reply._replace(body=self.text(text).encode())

    def _mask(self, match: re.Match[str]) -> str:
        word = match.group(0)
        if self._keys is not None and word in self._keys:
            return word
        needle = word.encode()
        return MASK if any(needle in body for body in self.sent) else word


def _keys(sent: Sequence[bytes]) -> set[str]:
    keys: set[str] = set()
    for body in sent:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            continue  # not JSON (an OTLP row): its words are masked, its keys too
        _collect(data, keys)
    return keys


def _collect(value: object, keys: set[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            keys.add(str(key))
            _collect(item, keys)
    elif isinstance(value, list):
        for item in value:
            _collect(item, keys)


__all__ = ["MASK", "Quoting"]
