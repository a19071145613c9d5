"""What the worker remembers across calls, bounded: background responses already logged, the
request each was created with, the start of each `previous_response_id` chain, and the Batch
output files already logged. One per pipeline; only the writer thread touches it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

REMEMBERED = 4096  # of each kind: an app with more in flight loses only the oldest


class _Bounded(Generic[_K, _V]):
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: OrderedDict[_K, _V] = OrderedDict()

    def get(self, key: _K) -> _V | None:
        return self.items.get(key)

    def put(self, key: _K, value: _V) -> None:
        items = self.items
        items[key] = value
        items.move_to_end(key)
        if len(items) > REMEMBERED:
            items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self.items


class WorkerMemory:
    __slots__ = (
        "logged_responses",
        "created_with",
        "chain_roots",
        "logged_files",
        "agent_models",
        "agent_inputs",
    )

    def __init__(self) -> None:
        self.logged_responses: _Bounded[str, bool] = _Bounded()
        self.created_with: _Bounded[str, Mapping[str, Any]] = _Bounded()
        self.chain_roots: _Bounded[str, str] = _Bounded()
        self.logged_files: _Bounded[str, bool] = _Bounded()
        self.agent_models: _Bounded[str, str] = _Bounded()  # agent session id -> its model
        self.agent_inputs: _Bounded[str, list[Any]] = _Bounded()  # its input not yet in a turn

    def root_of(self, response_id: str | None, previous: str | None) -> str | None:
        """The first response of the chain `previous` belongs to (itself when unknown)."""
        if previous is None:
            return None
        root = self.chain_roots.get(previous) or previous
        if response_id is not None:
            self.chain_roots.put(response_id, root)
        return root
