"""Reading SDK models and parsed JSON alike: a response part's fields, typed reads, no dumps."""

from __future__ import annotations

from typing import Any


def fields_of(obj: Any) -> Any:
    """A model's fields as a mapping: its `__dict__`, parsed JSON as is, or the object's
    attributes when it has neither.

    The SDK keeps every field of a model in its `__dict__` (unset ones as None): one type lookup
    per object instead of one per field, which matters where the SDK's own parsing between two
    reads has evicted the interpreter's type-attribute cache.
    """
    if type(obj) is dict:
        return obj
    try:
        return obj.__dict__
    except AttributeError:
        return _Attributes(obj)


class _Attributes:
    """`get()` over an object's attributes (objects without a `__dict__`)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self.obj, key, default)


def get(obj: Any, key: str) -> Any:
    """A field of a response part, parsed JSON (dict) or SDK model alike."""
    if type(obj) is dict:
        return obj.get(key)
    return getattr(obj, key, None)
