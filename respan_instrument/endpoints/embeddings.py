"""Embeddings (`/embeddings`): input tokens only, and never the vectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart


class Summary:
    """The parts of an embeddings response a log is built from, without its vectors."""

    __slots__ = ("model", "usage")

    def __init__(self, response: Any) -> None:
        self.model = getattr(response, "model", None)
        self.usage = getattr(response, "usage", None)


class Embeddings(Endpoint):
    routes = ("/embeddings",)
    operation = "embeddings"
    log_type = "embedding"
    output_tokens = False
    # Kept as a summary: the JSON of 1536 floats per input is most of the response's bytes and
    # none of the log's.
    keeps_body = False

    def summary(self, response: Any, http: Any) -> Any:
        return None if response is None else Summary(response)

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        if "input" in request:
            log["input"] = request["input"]


EMBEDDINGS = Embeddings()
