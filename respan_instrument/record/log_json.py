"""Pure: a request-log dict -> the strict JSON bytes a destination gets (runs on the worker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import fastjson
from .json_safe import clean

# the log fields that carry the conversation: the only ones trimmed when a log is too large
CONTENT_FIELDS = ("prompt_messages", "completion_message", "completion_messages", "input", "output")

# Strict JSON: a non-finite float fails the encode (as a lone surrogate fails .encode()) rather
# than writing the bare NaN / Infinity tokens that strict parsers reject, with the whole batch.
_encoder = json.JSONEncoder(default=str, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# What `_encoder.encode` builds afresh for every call, built once: the C encoder, with no
# circular-reference bookkeeping (a cycle fails the encode by recursion depth instead, and the
# log is cleaned as for any other failure). None where the C accelerator is missing.
_c_make: Any = getattr(json.encoder, "c_make_encoder", None)
_c_encode: Any = (
    _c_make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _c_make is not None
    else None
)


def _strict_text(value: Any) -> str:
    return "".join(_c_encode(value, 0)) if _c_encode is not None else _encoder.encode(value)


def _strict(value: Any) -> bytes:
    return _strict_text(value).encode()


def json_text(value: Any) -> str:
    """Content as JSON text for a span attribute: NaN and Infinity as null and other odd values
    as a log's are, whichever library spells it (a lone surrogate stays: text may hold one)."""
    data = fastjson.dumps(value)
    if data is not fastjson.DECLINED:
        return data.decode()  # type: ignore[no-any-return]
    try:
        return _strict_text(value)
    except Exception:  # noqa: BLE001 - strict JSON cannot carry it as it is: a cleaned copy can
        return _strict_text(clean(value))


def _dumps(value: Any) -> bytes:
    """orjson's bytes when it takes the value: the same JSON as `_strict`'s, or as that of the
    copy `clean()` makes where `_strict` fails on a non-finite number (orjson writes `null`)."""
    data = fastjson.dumps(value)
    return _strict(value) if data is fastjson.DECLINED else data


def encode_log(log: dict[str, Any], max_content_bytes: int, fast: bool = True) -> bytes:
    """One log as strict JSON; anything exotic becomes its string form rather than failing.

    The common log is encoded exactly once. Content that cannot be encoded as it is (a lone
    surrogate, a non-finite number, a key JSON has no spelling for, a cycle) costs one more
    pass that cleans a copy of the log; inline `data:` URLs and oversized content are only
    looked for when the encoded log shows them. `fast=False` leaves orjson out (a `log()`
    dict: any object the caller put there, spelled as the standard library spells it).
    """
    dumps = _dumps if fast else _strict
    log, data = _fitted(log, max_content_bytes, dumps)
    return dumps(log) if data is None else data


def limited(log: dict[str, Any], max_content_bytes: int) -> dict[str, Any]:
    """The log as `encode_log` would encode it: cleaned where JSON cannot carry it as it is,
    its content truncated as §4 says (for a destination that is not JSON)."""
    return _fitted(log, max_content_bytes, _strict)[0]  # (strict: no NaN may stay in the dict)


def _fitted(
    log: dict[str, Any], max_content_bytes: int, dumps: Callable[[Any], bytes]
) -> tuple[dict[str, Any], bytes | None]:
    """The log made encodable and within the content limit, and its encoding when the first
    try already is it (None when the content had to be truncated)."""
    try:
        data = dumps(log)
    except Exception:  # noqa: BLE001 - content JSON cannot carry as it is: clean it, keep the log
        log = clean(log)
        data = dumps(log)
    if data.find(b'"data:') != -1 or len(data) > max_content_bytes:  # (see fastjson.loads)
        from .truncate import limit_content

        limit_content(log, CONTENT_FIELDS, max_content_bytes)
        return log, None
    return log, data


__all__ = ["CONTENT_FIELDS", "encode_log", "json_text", "limited"]
