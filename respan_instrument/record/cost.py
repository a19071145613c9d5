"""Usage → price → cost, with its breakdown: the one place a finished call is priced, whichever
thread does it (the caller's for a call someone watches, the worker's for a lean one, a realtime
session's, a Batch output file's lines).

A call's endpoint says what it bought (`Endpoint.bill`: lines of tokens, tool calls, minutes of
audio, ...); each line is priced here by the price book. `cost` is the sum of the lines that
could be priced; a line that cannot be is named in `cost_unpriced` (with what a user needs to
reconcile it); a call none of whose lines is priced has no cost (never 0). The breakdown is
given for a bill of more than one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..endpoints.base import Outcome, Prices
from ..endpoints.bill import FREE, TOKENS, Line, Priced
from ..endpoints.usage import NEW_TUPLE
from .call_record import CallRecord


def settle_cost(
    record: CallRecord, response: Any, prices: Prices, span_attributes: bool, *, batch: bool = False
) -> Outcome:
    """Read a successful call's response, and set its record's usage, cost, cost breakdown and
    unpriced lines; the outcome (with span attributes when `span_attributes`)."""
    endpoint = record.endpoint
    outcome = endpoint.outcome(response, span_attributes)
    record.usage = outcome.usage
    request = record.request
    requested = endpoint.model_of(request, response)
    model = outcome.model or requested or ""
    call = NEW_TUPLE(
        Priced, (model, outcome.usage, record.price_provider, outcome.service_tier, request, response)
    )
    lines = endpoint.bill(call)
    record.cost, record.cost_breakdown, record.cost_unpriced = price_lines(
        prices, lines, call, requested, batch
    )
    return outcome


def price_lines(
    prices: Prices, lines: list[Line], call: Priced, requested: str | None, batch: bool
) -> tuple[float | None, dict[str, float] | None, dict[str, Any] | None]:
    """(cost, breakdown, unpriced lines) of a call's bill; a breakdown only for a bill of more
    than one line."""
    if len(lines) == 1:  # the common call: its tokens
        line = lines[0]
        if line.unit == TOKENS and line.model == call.model:
            usd = prices.cost(
                line.model, line.quantity, provider=call.provider, service_tier=call.service_tier, batch=batch
            )
            if usd is not None:
                return usd, None, None
            if not requested or requested == call.model:
                return None, None, _unpriced(line)
        usd = _line_cost(prices, line, call, requested, batch)
        return (usd, None, None) if usd is not None else (None, None, _unpriced(line))
    total = 0.0
    breakdown: dict[str, float] = {}
    unpriced: dict[str, Any] = {}
    for line in lines:
        usd = _line_cost(prices, line, call, requested, batch)
        if usd is None:
            unpriced.update(_unpriced(line))
        else:
            total += usd
            breakdown[line.name] = breakdown.get(line.name, 0.0) + usd
    if not breakdown:
        return None, None, unpriced or None
    return total, breakdown, unpriced or None


def _line_cost(prices: Prices, line: Line, call: Priced, requested: str | None, batch: bool) -> float | None:
    usd = _price(prices, line, line.model, call, batch)
    # an answer naming a model no price source knows (a build, `davinci:2023-07-21-v2`) is
    # billed as the model the request asked for
    if usd is None and requested and line.model == call.model and requested != call.model:
        usd = _price(prices, line, requested, call, batch)
    return usd


def _price(prices: Prices, line: Line, model: str, call: Priced, batch: bool) -> float | None:
    if line.unit == TOKENS:
        return prices.cost(
            model, line.quantity, provider=call.provider, service_tier=call.service_tier, batch=batch
        )
    if line.unit == FREE:
        return 0.0
    return prices.unit_cost(
        model, line.unit, line.quantity, line.variant, provider=call.provider, batch=batch
    )


def _unpriced(line: Line) -> dict[str, Any]:
    """A line no price source prices, as `metadata.cost_unpriced` names it."""
    entry: dict[str, Any] = {"model": line.model, "unit": line.unit}
    if line.unit != TOKENS:
        entry["quantity"] = line.quantity
    if line.detail:
        entry.update(line.detail)
    return {line.name: entry}


def add_cost(log: dict[str, Any], record: CallRecord) -> None:
    """A settled call's cost in its log: `cost`, and `metadata.cost_breakdown` /
    `metadata.cost_unpriced` when it has them (the user's metadata is copied, never changed)."""
    if record.cost is not None:
        log["cost"] = record.cost
    breakdown, unpriced = record.cost_breakdown, record.cost_unpriced
    if breakdown or unpriced:
        metadata: dict[str, Any] = dict(log.get("metadata") or {})
        if breakdown:
            metadata["cost_breakdown"] = breakdown
        if unpriced:
            metadata["cost_unpriced"] = unpriced
        log["metadata"] = metadata


def breakdown_of(metadata: Any) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """(cost breakdown, unpriced lines) from a log's metadata."""
    if not isinstance(metadata, Mapping):
        return None, None
    breakdown, unpriced = metadata.get("cost_breakdown"), metadata.get("cost_unpriced")
    return (
        breakdown if isinstance(breakdown, Mapping) else None,
        unpriced if isinstance(unpriced, Mapping) else None,
    )
