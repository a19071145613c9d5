"""orjson for the worker's common case, the standard library for everything else.

Parsing what a call kept and encoding its log are most of the worker's CPU per log; orjson does
both several times faster (benchmarks/PROFILE-delivery.md). It is only ever asked first, and it
declines whatever it would not read or spell as the standard library does, which then takes it
exactly as before; so what reaches Respan does not depend on which of the two did the work.
Declined:
- parsing: an integer of 19 digits or more anywhere in the text (orjson reads one past 64 bits
  as a float, losing digits), a lone surrogate, a NaN token, nesting past its depth limit;
- encoding: anything but exact JSON types (str, int, float, bool, None, list, tuple, dict with
  str keys): subclasses (an IntEnum, an OrderedDict, a namedtuple), datetimes, dataclasses and
  other objects, which the standard library spells through `default=str` or its own rules.
The one value orjson spells that the standard library would spell otherwise is an Enum member
that is neither a str nor an int, in a request dict kept as the SDK got it (orjson writes its
value, as the SDK sends it; the standard library its str()). `log()` dicts are encoded by the
standard library only. Where orjson is not installed (it has no PyPy build), the standard
library is all there is.
"""

from __future__ import annotations

from typing import Any

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the package depends on it where it has wheels
    _orjson = None

_OPTIONS = (
    (_orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS)
    if _orjson
    else 0
)
# digits -> "1", every other byte -> "0": a run of 19 ones is an integer orjson may not hold
_DIGITS = bytes(49 if 48 <= i <= 57 else 48 for i in range(256))
_LONG_NUMBER = b"1" * 19

DECLINED: Any = object()  # what `dumps`/`loads` return for what orjson will not do


def _decline(value: Any) -> Any:
    raise TypeError  # orjson's `default`: not an exact JSON type, the standard library decides


def dumps(value: Any) -> Any:
    """`value` as compact UTF-8 JSON bytes, NaN and Infinity as `null`; DECLINED for anything
    but exact JSON types (the caller's standard-library path decides then)."""
    if _orjson is None:
        return DECLINED
    try:
        return _orjson.dumps(value, default=_decline, option=_OPTIONS)
    except Exception:  # noqa: BLE001 - declined: the standard library's path takes it
        return DECLINED


def loads(data: bytes | str) -> Any:
    """The JSON value of `data`, or DECLINED (let the standard library read it)."""
    if _orjson is None:
        return DECLINED
    try:
        raw = data.encode() if isinstance(data, str) else data  # (a lone surrogate fails here)
        # (find, not `in`: `in` first tries its operand as a byte value, raising inside)
        if raw.translate(_DIGITS).find(_LONG_NUMBER) != -1:
            return DECLINED
        return _orjson.loads(raw)
    except Exception:  # noqa: BLE001 - declined: the standard library's path takes it
        return DECLINED


def available() -> bool:
    return _orjson is not None


__all__ = ["DECLINED", "available", "dumps", "loads"]
