"""A Batch API output file the app read, as one record per result line: each answered like
the endpoint it called, priced at the Batch rate, its `custom_id` in the log's metadata."""

from __future__ import annotations

import random
from typing import Any

from ..endpoints import BY_OBJECT
from ..endpoints.base import Priced, Prices, get
from .call import CallRecord


class BatchLineError(Exception):
    """A result line that failed: the status and message the Batch API recorded for it."""

    def __init__(self, status_code: int | None, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class _BatchRate:
    """The price book, asked for the Batch API's rates."""

    __slots__ = ("prices",)

    def __init__(self, prices: Any) -> None:
        self.prices = prices

    def cost(
        self, model: str, usage: Any, *, provider: str | None = None, service_tier: str | None = None
    ) -> Any:
        return self.prices.cost(model, usage, provider=provider, service_tier=service_tier, batch=True)

    def unit_cost(self, model: str, unit: str, quantity: float, variant: str | None = None) -> Any:
        return self.prices.unit_cost(model, unit, quantity, variant)


def split(record: CallRecord, lines: list[Any], prices: Prices) -> list[CallRecord]:
    """One settled record per result line of the file `record` read."""
    batch_prices = _BatchRate(prices)
    out = []
    for line in lines:
        answer = line.get("response") if isinstance(line.get("response"), dict) else {}
        body = answer.get("body")
        if not isinstance(body, dict):
            continue
        endpoint = BY_OBJECT.get(str(body.get("object")))
        if endpoint is None:
            continue
        model = body.get("model") if isinstance(body.get("model"), str) else None
        sub = CallRecord(endpoint, {}, record.base_url, record.start_ns, f"{endpoint.operation} {model}", {})
        sub.end_ns = record.end_ns
        sub.settled = True
        sub.trace_id, sub.span_id, sub.parent_id = record.trace_id, random.getrandbits(64), record.parent_id
        metadata = dict(record.attributes.get("metadata") or {})
        metadata["batch_custom_id"] = str(line.get("custom_id"))
        sub.attributes = {**record.attributes, "metadata": metadata}
        sub.response = body
        status = answer.get("status_code")
        error = line.get("error")
        if error or (isinstance(status, int) and status >= 400):
            message = get(error, "message") or get(get(body, "error"), "message") or "batch request failed"
            sub.error = BatchLineError(status if isinstance(status, int) else None, str(message))
        else:
            _, usage, response_model, tier = endpoint.outcome(body, False)
            sub.usage = usage
            priced = Priced(response_model or model or "", usage, record.price_provider, tier, {}, body)
            sub.cost = endpoint.price(batch_prices, priced)
        out.append(sub)
    return out
