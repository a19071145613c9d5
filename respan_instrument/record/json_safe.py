"""Pure: any value as something strict JSON can carry (runs on the worker, and once per
attributes() scope). Lone surrogates become U+FFFD, non-finite numbers None."""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 200  # well inside the interpreter's recursion limit, beyond any real request
_CIRCULAR = "[respan: circular reference]"
_TOO_DEEP = "[respan: nested too deep]"
_MAX_INT_BITS = 13_000  # under the 4,300 decimal digits int -> str allows by default


def clean(value: Any) -> Any:
    """A copy of `value` that strict JSON can carry: lone surrogates become U+FFFD, non-finite
    numbers None, other objects and odd keys their string form. The caller's data is untouched."""
    return _clean(value, 0, set())


def _clean(value: Any, depth: int, path: set[int]) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:  # Python refuses to spell it in decimal
            return f"[respan: an integer of about {int(value.bit_length() * 0.30103)} digits]"
        return value
    if value is None:
        return value
    if isinstance(value, (dict, list, tuple)):
        if depth >= _MAX_DEPTH:
            return _TOO_DEEP
        key = id(value)
        if key in path:
            return _CIRCULAR
        path.add(key)
        try:
            if isinstance(value, dict):
                return {_clean_key(k): _clean(v, depth + 1, path) for k, v in value.items()}
            return [_clean(v, depth + 1, path) for v in value]
        finally:
            path.discard(key)
    return clean_text(_text_of(value))


def _clean_key(key: Any) -> str | int | None:
    if isinstance(key, str):
        return clean_text(key)
    if key is None or isinstance(key, int):
        return key  # (bool too) JSON spells these keys as the encoder would anyway
    return clean_text(_text_of(key))


def _text_of(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a user object whose __str__ fails still leaves a log
        return f"<{type(value).__name__}>"


def clean_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (a surrogate pair becomes its character)."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
