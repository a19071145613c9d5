"""Decisions (`/decisions`): classification and scoring questions about an input, answered in
one call and billed as a Responses call (its usage spells cache writes too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, as_dict, get


class Decisions(Endpoint):
    routes = ("/decisions",)
    operation = "chat"
    log_type = "response"
    request_fields: frozenset[str] = frozenset()
    usage_names = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        """In: the input; out: each question beside its answer (answers come in question order)."""
        if "input" in request:
            log["input"] = request["input"]
        answers = get(response, "answers")
        if answers is None:
            return
        questions = request.get("questions")
        questions = list(questions) if isinstance(questions, (list, tuple)) else []
        log["output"] = [
            {"question": questions[i] if i < len(questions) else None, "answer": as_dict(answer)}
            for i, answer in enumerate(answers)
        ]


DECISIONS = Decisions()
