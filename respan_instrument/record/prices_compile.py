"""A model's price as a small function of its token counts, compiled once per model.

genai-prices takes ~50 us per `calc_price`, so the price book asks it once per (model, provider,
service tier, batch): the ModelPrice it selects is compiled here into straight-line Python (a
few subtractions and multiplications, with genai-prices' long-context tiers kept as a branch on
the input token count). genai-prices is imported on first use, not when this module is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..endpoints.usage import TokenUsage

PriceFn = Callable[[TokenUsage], "float | None"]

# genai-prices usage key -> TokenUsage field. Same meaning as genai-prices' own
# OpenAI extractors (chat, responses, realtime, images).
USAGE_KEYS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cached_input_tokens",
    "output_reasoning_tokens": "reasoning_tokens",
    "input_audio_tokens": "input_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "cache_audio_read_tokens": "cached_audio_tokens",
    "input_image_tokens": "input_image_tokens",
    "output_image_tokens": "output_image_tokens",
    "cache_image_read_tokens": "cached_image_tokens",
}

# A priced token unit: (usage key, its dimensions, per how many units the price is, and its
# prices as (tier start or None for the base, price) pairs, base first; Decimal or float).
_Unit = tuple[str, frozenset[tuple[str, str]], int, tuple[tuple[Any, Any], ...]]

_TOKEN_DIMS: Mapping[str, frozenset[tuple[str, str]]] = {
    "input_tokens": frozenset({("family", "tokens"), ("direction", "input")}),
    "cache_read_tokens": frozenset(
        {("family", "tokens"), ("direction", "input"), ("token_type", "cache_read")}
    ),
    "output_tokens": frozenset({("family", "tokens"), ("direction", "output")}),
    "cache_write_tokens": frozenset(
        {("family", "tokens"), ("direction", "input"), ("token_type", "cache_write")}
    ),
}


def compile_units(units: list[_Unit], constant: float, label: str) -> PriceFn:
    """Build `f(usage) -> USD | None` for priced token units, with genai-prices' semantics.

    As in genai-prices (decompose.compute_leaf_values), each priced unit pays for
    its "leaf": its own count minus the leaves of the more specific priced units
    below it (input minus cached input, ...). A negative leaf is inconsistent
    usage, for which f returns None. Tiered prices use the tier whose start is
    below the total input tokens, for every tiered unit ("cliff" pricing).

    The function is generated as straight-line Python: a cached `cost()` then
    costs a tuple unpack and a few multiplications.
    """
    fields = TokenUsage._fields
    ordered = sorted(units, key=lambda unit: (-len(unit[1]), unit[0]))
    leaves: list[tuple[_Unit, dict[str, int]]] = []
    for unit in ordered:
        key, dims = unit[0], unit[1]
        expr: dict[str, int] = {}
        if key in USAGE_KEYS:
            expr[USAGE_KEYS[key]] = 1
        for other, other_expr in leaves:
            if other[1] >= dims:  # more specific unit, priced separately
                for name, coef in other_expr.items():
                    expr[name] = expr.get(name, 0) - coef
        expr = {name: coef for name, coef in expr.items() if coef}
        leaves.append((unit, expr))

    lines = ["def price(u):", f"    {', '.join(fields)} = u"]
    checks: list[str] = []
    terms: list[tuple[int, int, Any]] = []  # (leaf index, per, prices)
    for index, (unit, expr) in enumerate(leaves):
        if not expr:  # a count we never have (e.g. cache_write_1h_tokens): always 0
            continue
        parts = []
        for name, coef in sorted(expr.items(), key=lambda item: (-item[1], fields.index(item[0]))):
            sign = "+" if coef > 0 else "-"
            mult = "" if abs(coef) == 1 else f"{abs(coef)} * "
            parts.append(f" {sign} {mult}{name}")
        source = "".join(parts).lstrip(" +")
        if source.startswith("- "):
            source = "-" + source[2:]
        lines.append(f"    l{index} = {source}")
        checks.append(f"l{index} < 0")
        terms.append((index, unit[2], unit[3]))
    if checks:
        lines.append(f"    if {' or '.join(checks)}:")
        lines.append("        return None")

    starts = sorted(
        {start for _, _, prices in terms for start, _ in prices if start is not None}, reverse=True
    )

    def total(threshold: int | None) -> str:
        by_per: dict[int, list[str]] = {}
        for index, per, prices in terms:
            price = prices[0][1]
            if threshold is not None:
                for start, tier_price in prices[1:]:
                    if start <= threshold:
                        price = tier_price
            if price:
                by_per.setdefault(per, []).append(f"l{index} * {float(price)!r}")
        sums = [f"({' + '.join(items)}) / {per!r}" for per, items in sorted(by_per.items())]
        if constant or not sums:
            sums.append(repr(float(constant)))
        return " + ".join(sums)

    for start in starts:
        lines.append(f"    if input_tokens > {start!r}:")
        lines.append(f"        return {total(start)}")
    lines.append(f"    return {total(None)}")
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<respan price {label}>", "exec"), {"__builtins__": {}}, namespace)
    fn: PriceFn = namespace["price"]
    fn.__doc__ = source  # for debugging: the generated code
    return fn


def override_fn(model: str, rates: Mapping[str, float]) -> PriceFn:
    """A user price: input (uncached), cached input, cache writes, output; all per 1M tokens."""
    cached = rates.get("cached_input", rates["input"])
    units: list[_Unit] = [
        ("input_tokens", _TOKEN_DIMS["input_tokens"], 1_000_000, ((None, rates["input"]),)),
        ("cache_read_tokens", _TOKEN_DIMS["cache_read_tokens"], 1_000_000, ((None, cached),)),
        ("output_tokens", _TOKEN_DIMS["output_tokens"], 1_000_000, ((None, rates["output"]),)),
    ]
    if "cache_write" in rates:  # (else written tokens cost the input rate, as any input)
        written = ((None, rates["cache_write"]),)
        units.append(("cache_write_tokens", _TOKEN_DIMS["cache_write_tokens"], 1_000_000, written))
    return compile_units(units, 0.0, f"override {model}")


# ---- genai-prices (imported lazily) -----------------------------------------------------------

_gp: Any = None  # (data_snapshot, types, unit registry) once imported; False if not installed
_gp_lock = threading.Lock()


def genai_prices() -> Any:
    """Import genai-prices on first use; None if it is not installed."""
    global _gp
    if _gp is None:
        with _gp_lock:
            if _gp is None:
                try:
                    from genai_prices import data_snapshot, types

                    try:
                        from genai_prices.units import _get_registry

                        registry = _get_registry()
                    except Exception:  # noqa: BLE001  # pragma: no cover - private API moved: slow path
                        registry = None
                    _gp = (data_snapshot, types, registry)
                except ImportError:
                    _gp = False
    return _gp or None


class Unpriceable(Exception):
    """The model's price needs usage we do not have (e.g. audio seconds)."""


def compile_model_price(model_price: Any, registry: Any, label: str) -> PriceFn:
    """Compile a genai-prices ModelPrice (0.1.x / 0.2.x) into a price function."""
    units: list[_Unit] = []
    constant = 0.0
    other_units: list[str] = []
    for price_key, value in vars(model_price).items():
        if price_key.startswith("_") or value is None:
            continue
        try:
            unit = registry.unit_for_price_key(price_key)
        except KeyError:
            continue  # genai-prices ignores unknown price keys too (with a warning)
        dims = unit.dimensions
        if hasattr(value, "tiers"):
            prices = ((None, value.base),) + tuple((tier.start, tier.price) for tier in value.tiers)
        else:
            prices = ((None, value),)
        if dims.get("family") == "tokens":
            units.append((unit.usage_key, frozenset(dims.items()), unit.per, prices))
        elif unit.usage_key == "requests":  # genai-prices counts one request per call
            constant += float(prices[0][1]) / unit.per
        else:
            other_units.append(unit.usage_key)
    if not units and not constant and other_units:
        raise Unpriceable(", ".join(sorted(other_units)))
    return compile_units(units, constant, label)


def next_change(info: Any, types: Any, now: datetime) -> float | None:
    """Unix time when the model's selected price may change (a start date or time of day)."""
    constraints = [
        getattr(c, "constraint", None) for c in (info.prices if isinstance(info.prices, list) else ())
    ]
    constraints += [getattr(v, "constraint", None) for v in (getattr(info, "price_variants", None) or ())]
    soonest: datetime | None = None
    for constraint in constraints:
        candidates: list[datetime] = []
        if isinstance(constraint, types.StartDateConstraint):
            start = constraint.start_date
            candidates.append(datetime(start.year, start.month, start.day, tzinfo=timezone.utc))
        elif isinstance(constraint, types.TimeOfDateConstraint):
            for moment in (constraint.start_time, constraint.end_time):
                tz = moment.tzinfo or timezone.utc
                local_now = now.astimezone(tz)
                when = datetime.combine(local_now.date(), moment.replace(tzinfo=None), tzinfo=tz)
                if when <= now:
                    when += timedelta(days=1)
                candidates.append(when)
        for when in candidates:
            if when > now and (soonest is None or when < soonest):
                soonest = when
    return soonest.timestamp() if soonest is not None else None


def known_provider(data_snapshot: Any, snapshot: Any, provider: str) -> bool:
    finder = getattr(data_snapshot, "find_provider_by_id", None)
    if finder is None:  # pragma: no cover
        return any(p.id == provider for p in snapshot.providers)
    return finder(snapshot.providers, provider) is not None


def slow_fn(model_price: Any) -> PriceFn:  # pragma: no cover - only without genai-prices' unit registry
    """Price through genai-prices on every call (~50 us)."""
    from genai_prices import Usage

    def price(usage: TokenUsage) -> float | None:
        values = {key: getattr(usage, name) for key, name in USAGE_KEYS.items()}
        try:
            return float(model_price.calc_price(Usage(**values))["total_price"])
        except Exception:  # noqa: BLE001 - cost() must never raise
            return None

    return price
