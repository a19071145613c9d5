"""`attributes()`: per-call Respan fields carried in a contextvar."""

from __future__ import annotations

import contextvars
import functools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from .record.json_safe import clean_text

F = TypeVar("F", bound=Callable[..., Any])

# attributes() keys that become request-log fields (and gateway body fields)
LOG_FIELDS = (
    "customer_identifier",
    "customer_params",
    "thread_identifier",
    "custom_identifier",
    "group_identifier",
    "metadata",
    "properties",
    "prompt_id",
    "prompt_name",
    "span_workflow_name",
)
# sent to Respan's gateway only, never recorded
CREDENTIALS = "customer_credentials"
# whether the calls inside keep their content (SPEC §16); never a field of a log
CAPTURE_CONTENT = "capture_content"
ALLOWED_KEYS = frozenset((*LOG_FIELDS, CREDENTIALS, CAPTURE_CONTENT))
_MERGED_DICTS = ("metadata", "properties")
_STRING_KEYS = (
    "customer_identifier",
    "thread_identifier",
    "custom_identifier",
    "group_identifier",
    "prompt_id",
    "prompt_name",
    "span_workflow_name",
)
MAX_IDENTIFIER_LENGTH = 254

EMPTY: Mapping[str, Any] = MappingProxyType({})
_current: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "respan_attributes", default=EMPTY
)


def current() -> Mapping[str, Any]:
    """The attributes in force for a call made now (read-only)."""
    return _current.get()


def current_reader() -> Callable[[], Mapping[str, Any]]:
    """`current` without its Python frame, for the per-call path."""
    return _current.get


def validate(values: Mapping[str, Any], where: str = "attributes") -> dict[str, Any]:
    """Check keys and types; raise TypeError/ValueError at the call that set them."""
    unknown = set(values) - ALLOWED_KEYS
    if unknown:
        raise TypeError(f"{where}() got unknown keys {sorted(unknown)}; allowed: {sorted(ALLOWED_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in _STRING_KEYS:
            value = _identifier(value, f"{where}(): {key}")
        elif key in _MERGED_DICTS:
            if not isinstance(value, Mapping):
                raise TypeError(f"{where}(): {key} must be a dict, not {type(value).__name__}")
            value = {clean_text(str(k)): _json_value(v, f"{where}(): {key}[{k!r}]") for k, v in value.items()}
        elif key == "customer_params":
            if not isinstance(value, Mapping):
                raise TypeError(f"{where}(): customer_params must be a dict")
            extra = set(value) - {"customer_identifier", "name", "email"}
            if extra:
                raise TypeError(f"{where}(): customer_params has unknown keys {sorted(extra)}")
            value = {
                k: _identifier(v, f"{where}(): customer_params[{k!r}]")
                for k, v in value.items()
                if v is not None
            }
        elif key == "customer_credentials":
            value = _check_credentials(value, where)
        elif key == CAPTURE_CONTENT and not isinstance(value, bool):
            raise TypeError(f"{where}(): capture_content must be True or False, not {type(value).__name__}")
        out[key] = value
    return out


def _identifier(value: Any, what: str) -> str:
    """Identifiers are strings in a log; an int is taken as its decimal text."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    text = clean_text(str(value))
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_IDENTIFIER_LENGTH} characters")
    return text


def _json_value(value: Any, what: str) -> Any:
    """A copy of a metadata/properties value with its JSON types kept (a number stays a number,
    a bool a bool), so that what is logged is what was given here, whatever the caller later
    does to its own dicts and lists. Anything JSON cannot carry is a TypeError now rather than
    a surprise in the log."""
    kind = type(value)
    if value is None or kind is int or kind is bool:
        return value
    # Strings and floats as strict JSON carries them (these values also travel in a gateway
    # call's own request body, where the SDK refuses NaN and lone surrogates): see record/json_safe.py.
    # Subclasses (str and int enums, numpy's float64) as the plain value they stand for.
    if isinstance(value, str):
        return clean_text(value if kind is str else str.__str__(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{what} has a key of type {type(k).__name__}; JSON keys are strings")
            out[clean_text(k)] = _json_value(v, what)
        return out
    if isinstance(value, (list, tuple)):
        return [_json_value(v, what) for v in value]
    raise TypeError(f"{what} must be a JSON value (str, number, bool, None, list, dict), not {kind.__name__}")


def _check_credentials(value: Any, where: str) -> Any:
    if not isinstance(value, Mapping) or not value:
        raise TypeError(
            f"{where}(): customer_credentials must be a dict like {{'openai': {{'api_key': ...}}}}"
        )
    for provider, creds in value.items():
        entries = creds if isinstance(creds, list) else [{"weight": 1, "credentials": creds}]
        if not entries:
            raise ValueError(f"{where}(): customer_credentials[{provider!r}] is empty")
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("credentials"), Mapping):
                raise TypeError(f"{where}(): customer_credentials[{provider!r}] entries need 'credentials'")
            weight = entry.get("weight", 1)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
                raise ValueError(f"{where}(): customer_credentials weights must be positive numbers")
            key = entry["credentials"].get("api_key")
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"{where}(): customer_credentials[{provider!r}] needs a non-empty api_key")
    return value


def merge(base: Mapping[str, Any], new: Mapping[str, Any]) -> Mapping[str, Any]:
    """Inner wins per key; metadata/properties dicts merge."""
    merged = dict(base)
    for key, value in new.items():
        old = merged.get(key)
        if key in _MERGED_DICTS and isinstance(old, Mapping):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return MappingProxyType(merged)


class attributes:
    """Attach Respan fields to every call made inside a `with` block or a decorated function.

    Example:
        with respan_instrument.attributes(customer_identifier="user_123", metadata={"plan": "pro"}):
            client.chat.completions.create(...)

    Nesting merges (the inner value wins; `metadata` dicts merge). Values follow contextvars,
    so asyncio tasks created inside inherit them. Unknown keys raise TypeError here.
    `capture_content=False` (or True) overrides the process's content setting for the calls
    inside; it is never a field of their logs.
    """

    def __init__(self, **values: Any) -> None:
        self._values = validate(values)
        self._tokens: list[contextvars.Token[Mapping[str, Any]]] = []

    def __enter__(self) -> attributes:
        self._tokens.append(_current.set(merge(_current.get(), self._values)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> attributes:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        import inspect  # only decorators need it; keeps `import respan_instrument` light

        values = self._values
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _current.set(merge(_current.get(), values))
                try:
                    async for item in func(*args, **kwargs):
                        yield item
                finally:
                    _current.reset(token)

            return agen_wrapper  # type: ignore[return-value]
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _current.set(merge(_current.get(), values))
                try:
                    return await func(*args, **kwargs)
                finally:
                    _current.reset(token)

            return async_wrapper  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _current.set(merge(_current.get(), values))
                try:
                    yield from func(*args, **kwargs)
                finally:
                    _current.reset(token)

            return gen_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _current.set(merge(_current.get(), values))
            try:
                return func(*args, **kwargs)
            finally:
                _current.reset(token)

        return wrapper  # type: ignore[return-value]
