"""orjson for the worker's common case, the standard library for everything else.

Parsing what a call kept and encoding its log are most of the worker's CPU per log; orjson does
both several times faster (a chat log's encoding 7 -> 0.6 µs, a 50-chunk stream's events
55 -> 25 µs). It is only ever asked first: whatever it declines (a lone surrogate, an integer
beyond 64 bits, a key that is not a string, nesting past its depth limit, a NaN token in a
response) goes to the standard library's path exactly as before, so the bytes that reach Respan
never depend on which of the two did the work. Where orjson is not installed (it has no PyPy
build), that path is all there is.
"""

from __future__ import annotations

from typing import Any

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the package depends on it where it has wheels
    _orjson = None

# With these, orjson hands datetimes and dataclasses to `default=str`, as the standard library does.
_OPTIONS = (_orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS) if _orjson else 0

DECLINED: Any = object()  # what `dumps`/`loads` return for what orjson will not do


def dumps(value: Any) -> Any:
    """`value` as compact UTF-8 JSON bytes, `default=str` for unknown objects, NaN and
    Infinity as `null`; DECLINED when orjson cannot say it (the caller's standard-library path
    decides then)."""
    if _orjson is None:
        return DECLINED
    try:
        return _orjson.dumps(value, default=str, option=_OPTIONS)
    except Exception:  # noqa: BLE001 - declined: the standard library's path takes it
        return DECLINED


def loads(data: bytes | str) -> Any:
    """The JSON value of `data`, or DECLINED (not JSON to orjson: let the standard library try)."""
    if _orjson is None:
        return DECLINED
    try:
        return _orjson.loads(data)
    except Exception:  # noqa: BLE001 - declined: the standard library's path takes it
        return DECLINED


def available() -> bool:
    return _orjson is not None


__all__ = ["DECLINED", "available", "dumps", "loads"]
