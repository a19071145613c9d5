"""Moderations (`/moderations`): a guardrail log, free of charge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, as_dict, get
from .bill import FREE, Line, Priced


class Moderations(Endpoint):
    routes = ("/moderations",)
    operation = "moderation"
    log_type = "guardrail"
    request_fields: frozenset[str] = frozenset()
    output_tokens = False

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None

    def bill(self, call: Priced) -> list[Line]:
        """OpenAI does not charge for moderation: a true 0, not an unknown price."""
        return [Line("moderation", call.model, FREE, 0)]

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        if "input" in request:
            log["input"] = request["input"]
        results = get(response, "results")
        if results:
            log["output"] = [_verdict(result) for result in results]


def _verdict(result: Any) -> dict[str, Any]:
    """`flagged` and the names of the categories that flagged an input (as the API spells them)."""
    categories = as_dict(get(result, "categories"))
    flagged = (
        sorted(name for name, hit in categories.items() if hit is True)
        if isinstance(categories, dict)
        else []
    )
    return {"flagged": bool(get(result, "flagged")), "categories": flagged}


MODERATIONS = Moderations()
