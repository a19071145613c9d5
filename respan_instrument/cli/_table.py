"""Readable fixed-width rendering of Respan request logs (shared by demo, collect and logs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["format_line", "render_table", "render_totals", "status_of", "tokens_of"]

_NONE = "-"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str:
    if value is None or value == "":
        return _NONE
    return str(value)


def _ms(seconds: Any) -> str:
    number = _number(seconds)
    return _NONE if number is None else f"{number * 1000:.1f}"


def _cost(value: Any) -> str:
    number = _number(value)
    return _NONE if number is None else f"{number:.6f}"


def _count(value: Any) -> str:
    number = _int(value)
    return _NONE if number is None else str(number)


def status_of(log: Mapping[str, Any]) -> str:
    """``ok`` or ``error <code>``, from the log's status / status_code fields."""
    code = _int(log.get("status_code"))
    failed = log.get("status") == "error" or (code is not None and code >= 400)
    if failed:
        return f"error {code}" if code is not None else "error"
    return "ok"


def tokens_of(log: Mapping[str, Any]) -> int:
    """Prompt plus completion tokens (0 for what the log does not report)."""
    return (_int(log.get("prompt_tokens")) or 0) + (_int(log.get("completion_tokens")) or 0)


def _ttft(log: Mapping[str, Any]) -> Any:
    return log.get("ttft", log.get("time_to_first_token"))


def _latency(log: Mapping[str, Any]) -> Any:
    return log.get("generation_time", log.get("latency"))


@dataclass(frozen=True)
class _Column:
    title: str
    right: bool = False


_COLUMNS = (
    _Column("type"),
    _Column("model"),
    _Column("customer"),
    _Column("prompt", right=True),
    _Column("completion", right=True),
    _Column("cost_usd", right=True),
    _Column("latency_ms", right=True),
    _Column("ttft_ms", right=True),
    _Column("status"),
)


def _cells(log: Mapping[str, Any]) -> list[str]:
    return [
        _text(log.get("log_type")),
        _text(log.get("model")),
        _text(log.get("customer_identifier")),
        _count(log.get("prompt_tokens")),
        _count(log.get("completion_tokens")),
        _cost(log.get("cost")),
        _ms(_latency(log)),
        _ms(_ttft(log)),
        status_of(log),
    ]


def _grid(columns: Sequence[_Column], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(c.title) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if col.right else cell.ljust(w)
            for col, cell, w in zip(columns, cells, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line([c.title for c in columns]), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def render_table(logs: Sequence[Mapping[str, Any]], received: Sequence[str] | None = None) -> str:
    """One row per log; with ``received`` (ISO timestamps, one per log) a leading time column."""
    columns = list(_COLUMNS)
    rows = [_cells(log) for log in logs]
    if received is not None:
        columns.insert(0, _Column("received"))
        rows = [[_clock(stamp)] + row for stamp, row in zip(received, rows, strict=True)]
    return _grid(columns, rows)


def render_totals(logs: Sequence[Mapping[str, Any]]) -> str:
    """Calls, tokens and cost per customer (in first-seen order), then an overall line."""
    totals: dict[str, list[float]] = {}
    priced: dict[str, bool] = {}
    for log in logs:
        name = _text(log.get("customer_identifier"))
        entry = totals.setdefault(name, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += tokens_of(log)
        cost = _number(log.get("cost"))
        if cost is not None:
            entry[2] += cost
            priced[name] = True
    columns = [
        _Column("customer"),
        _Column("calls", right=True),
        _Column("tokens", right=True),
        _Column("cost_usd", right=True),
    ]
    rows = [
        [name, str(int(calls)), str(int(tokens)), f"{cost:.6f}" if priced.get(name) else _NONE]
        for name, (calls, tokens, cost) in totals.items()
    ]
    if len(rows) > 1:
        all_cost = sum(v[2] for v in totals.values())
        rows.append(
            [
                "(all)",
                str(sum(int(v[0]) for v in totals.values())),
                str(sum(int(v[1]) for v in totals.values())),
                f"{all_cost:.6f}" if priced else _NONE,
            ]
        )
    return _grid(columns, rows)


def _clock(stamp: str | None) -> str:
    """Local wall-clock time of an ISO timestamp (date included unless it is today)."""
    if not stamp:
        return _NONE
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return stamp
    if moment.date() != datetime.now().astimezone().date():
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%H:%M:%S")


def format_line(log: Mapping[str, Any], when: datetime | None = None) -> str:
    """One line for a log as it arrives: time, type, model, customer, tokens, cost, status."""
    moment = (when or datetime.now()).strftime("%H:%M:%S")
    prompt, completion = _count(log.get("prompt_tokens")), _count(log.get("completion_tokens"))
    return "  ".join(
        [
            moment,
            _text(log.get("log_type")).ljust(9),
            _text(log.get("model")).ljust(24),
            f"customer={_text(log.get('customer_identifier'))}",
            f"tokens={prompt}+{completion}",
            f"cost={_cost(log.get('cost'))}",
            status_of(log),
        ]
    )
