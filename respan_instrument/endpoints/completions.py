"""Legacy completions (`/completions`): chat's usage and stream chunks, a prompt and texts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, get
from .chat import ChatAccumulator, choices_of


class Completions(Endpoint):
    routes = ("/completions",)
    operation = "text_completion"
    log_type = "completion"

    def accumulator(self) -> ChatAccumulator:
        return ChatAccumulator()

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        if "prompt" in request:
            log["input"] = request["prompt"]
        choices = choices_of(response)
        if choices:
            texts = [get(c, "text") for c in choices]
            log["output"] = texts[0] if len(texts) == 1 else texts


COMPLETIONS = Completions()
