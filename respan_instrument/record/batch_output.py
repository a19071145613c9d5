"""A Batch API output file the app read, as one record per result line: each answered like
the endpoint it called, priced at the Batch rate, its `custom_id` in the log's metadata."""

from __future__ import annotations

import random
from typing import Any

from ..endpoints import BY_OBJECT
from ..endpoints.base import Endpoint, Prices, get
from ..endpoints.images import IMAGES
from ..endpoints.moderations import MODERATIONS
from .call_record import CallRecord
from .cost import settle_cost


class BatchLineError(Exception):
    """A result line that failed: the status and message the Batch API recorded for it."""

    def __init__(self, status_code: int | None, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _endpoint_of(body: dict[str, Any]) -> Endpoint | None:
    """The endpoint a result's body answers: its `object`, or for an images or moderations
    answer (which have none) its shape."""
    endpoint = BY_OBJECT.get(str(body.get("object")))
    if endpoint is None and "object" not in body:
        if "created" in body and ("data" in body or "usage" in body):
            return IMAGES
        if "results" in body and "model" in body:
            return MODERATIONS
    return endpoint


def split(record: CallRecord, lines: list[Any], prices: Prices) -> list[CallRecord]:
    """One settled record per result line of the file `record` read."""
    out = []
    for line in lines:
        answer = line.get("response") if isinstance(line.get("response"), dict) else {}
        body = answer.get("body")
        if not isinstance(body, dict):
            continue
        endpoint = _endpoint_of(body)
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
        # (an endpoint that keeps a summary of its answers is read from one, as a live call's)
        sub.response = body if endpoint.keeps_body else endpoint.summary(body, None)
        status = answer.get("status_code")
        error = line.get("error")
        if error or (isinstance(status, int) and status >= 400):
            message = get(error, "message") or get(get(body, "error"), "message") or "batch request failed"
            sub.error = BatchLineError(status if isinstance(status, int) else None, str(message))
        else:
            sub.price_provider = record.price_provider
            settle_cost(sub, sub.response, prices, False, batch=True)
        out.append(sub)
    return out
