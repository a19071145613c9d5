"""A destination's encoder: what it does with each submitted item, on the worker.

An item is a finished call's record, an Agents SDK span, or a `log()` dict. The encoder settles
it (usage, price, cost, timing), builds its logs (none, one, or several: a Batch output file
holds many), redacts their content, and encodes each as one row of its destination: a Respan
request log as JSON (`RequestLogEncoder`), or an OTLP span (`record.otlp.SpanEncoder`).
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Mapping
from typing import Any

from ..endpoints.base import Prices
from .call_record import CallRecord
from .log_json import encode_log
from .payload import calls_of
from .privacy import Manual, NoContent, Privacy
from .worker_memory import WorkerMemory


class ItemEncoder(abc.ABC):
    """Settles each submitted item and encodes each of its logs as a row (`_row`)."""

    def __init__(
        self,
        *,
        privacy: Privacy,
        prices: Prices,
        defaults: Mapping[str, Any],
        seen: WorkerMemory,
        max_content_bytes: int,
    ) -> None:
        self.privacy = privacy
        self.max_content_bytes = max_content_bytes
        self._options: dict[str, Any] = {
            "privacy": privacy,
            "prices": prices,
            "defaults": defaults,
            "seen": seen,
        }
        # The redactor never runs on a caller's thread: a log a caller must build itself (the
        # writer far behind, see deliver.pipeline.Pipeline._compact) goes without its content.
        self._on_caller = self if privacy.redactor is None else self._without_content()

    def encode(self, item: Any) -> list[bytes]:
        """The rows of one item, its content redacted: a log() dict is taken as it is."""
        privacy = self.privacy
        if isinstance(item, (dict, Manual)):
            return [self._row(None, privacy.hand_built(item), hand_built=True)]
        return [self._row(record, privacy.redacted(log)) for record, log in calls_of(item, **self._options)]

    def encode_on_caller(self, item: Any) -> list[bytes]:
        """`encode` on a caller's thread: without content while a redactor is set."""
        return self._on_caller.encode(item)

    @abc.abstractmethod
    def _row(self, record: CallRecord | None, log: dict[str, Any], hand_built: bool = False) -> bytes:
        """One log (and the settled record it was built from, if any) as its row."""

    def _without_content(self) -> ItemEncoder:
        blind = copy.copy(self)
        blind.privacy = NoContent()
        blind._options = {**self._options, "privacy": blind.privacy}
        blind._on_caller = blind
        return blind


class RequestLogEncoder(ItemEncoder):
    """Respan request logs, each as strict JSON (`RespanLogs`' rows)."""

    def _row(self, record: CallRecord | None, log: dict[str, Any], hand_built: bool = False) -> bytes:
        # a log() dict may hold any object: spelled as the standard library spells it
        return encode_log(log, self.max_content_bytes, fast=not hand_built)


__all__ = ["ItemEncoder", "RequestLogEncoder"]
