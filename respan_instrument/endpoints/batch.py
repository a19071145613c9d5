"""Batch API output files (`GET /files/{id}/content`): each result line the app reads is one
call, logged like the endpoint it answered and priced at the Batch rate (record/batch_output.py)."""

from __future__ import annotations

import json
from typing import Any

from .base import Endpoint

_LOOKS_LIKE_RESULTS = (b'"custom_id"', b'"response"')


class BatchResults:
    """The body of a Batch API output file, as the app received it (the same bytes, no copy)."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


class BatchOutput(Endpoint):
    routes = ("/files/{id}/content",)
    methods = frozenset({"get"})
    operation = "batch"
    log_type = "batch"
    request_fields: frozenset[str] = frozenset()
    keeps_body = False

    def summary(self, response: Any, http: Any) -> Any:
        """Only a file of Batch results: any other file the app downloads is not model work."""
        if isinstance(response, BatchResults):
            return response
        if http is None:
            http = getattr(response, "response", None)  # the SDK's HttpxBinaryResponseContent
        try:
            body = http.content if http is not None else None
        except Exception:  # noqa: BLE001 - streamed to the app, unread here: nothing to log from
            return None
        if not isinstance(body, bytes):
            return None
        head = body[:4096]
        if head[:1] != b"{" or not all(marker in head for marker in _LOOKS_LIKE_RESULTS):
            return None
        return BatchResults(body)

    def lines(self, response: Any) -> list[Any] | None:
        if not isinstance(response, BatchResults):
            return []
        out = []
        for raw in response.body.splitlines():
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict) and "custom_id" in line:
                out.append(line)
        return out


BATCH_OUTPUT = BatchOutput()
