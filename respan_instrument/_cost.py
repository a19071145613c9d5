"""USD cost of one call, from the provider's token usage.

Lookup order for a model id (`PriceBook.cost`):

1. user prices (`prices=` / `RESPAN_PRICES_FILE`): the exact model id, then the
   longest key that is a prefix of it (e.g. `ft:gpt-4o-mini` for
   `ft:gpt-4o-mini:org::abc`);
2. `genai-prices`, for the provider given (a genai-prices provider id, see
   `provider_from_base_url`) or, with no provider, the provider genai-prices
   guesses from the model id, then OpenAI;
3. the same two steps again for the id with its `ft:` wrapper stripped
   (`ft:gpt-4.1-2025-04-14:org::x` -> `gpt-4.1-2025-04-14`), then with its
   `-YYYY-MM-DD` suffix stripped (`gpt-4.1`).

An unknown model costs None (never 0) and logs one warning per model per process.

genai-prices takes ~50 us per `calc_price`, so it is asked once per
(model, provider, service tier, batch): the ModelPrice it selects is compiled
into a small function of the token counts (a few subtractions and
multiplications, with genai-prices' long-context tiers kept as a branch on the
input token count) and cached in a plain dict. genai-prices is imported on the
first lookup, not when this module is imported.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from numbers import Real
from typing import Any, NamedTuple
from urllib.parse import urlsplit

__all__ = (
    "PriceBook",
    "TokenUsage",
    "load_prices_file",
    "provider_from_base_url",
    "validate_prices",
)

logger = logging.getLogger("respan_instrument")


class TokenUsage(NamedTuple):
    """Token counts of one call, as the provider reported them.

    Sub-counts are parts of their totals, as in OpenAI's usage objects:
    `cached_input_tokens`, `cache_write_tokens`, `input_audio_tokens` and
    `input_image_tokens` are included in `input_tokens`; `reasoning_tokens`,
    `output_audio_tokens` and `output_image_tokens` are included in
    `output_tokens` (so reasoning is priced as output and never counted twice);
    `cached_audio_tokens` / `cached_image_tokens` are the audio / image part of
    `cached_input_tokens` (Realtime API).
    """

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cache_write_tokens: int = 0
    cached_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    cached_image_tokens: int = 0


# genai-prices usage key -> TokenUsage field. Same meaning as genai-prices' own
# OpenAI extractors (chat, responses, realtime, images).
_USAGE_KEYS: Mapping[str, str] = {
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

# ---------------------------------------------------------------------------
# user prices: validation and RESPAN_PRICES_FILE
# ---------------------------------------------------------------------------

_PRICE_FIELDS = ("input", "output", "cached_input")
_REQUIRED_PRICE_FIELDS = ("input", "output")


def validate_prices(prices: Any, source: str = "prices") -> dict[str, dict[str, float]]:
    """Check `{model: {"input": usd_per_1m, "output": ..., "cached_input": ...}}`.

    `cached_input` is optional (cached tokens then cost the input rate). Returns
    a plain copy with float rates; raises ValueError naming `source` otherwise.
    """
    if not isinstance(prices, Mapping):
        raise ValueError(
            f"{source} must map model ids to {{'input': ..., 'output': ...}} USD per 1M tokens, "
            f"got {type(prices).__name__}"
        )
    out: dict[str, dict[str, float]] = {}
    for model, rates in prices.items():
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"{source}: model ids must be non-empty strings, got {model!r}")
        if not isinstance(rates, Mapping):
            raise ValueError(
                f"{source}[{model!r}] must be a mapping like {{'input': 0.15, 'output': 0.6}}, "
                f"got {type(rates).__name__}"
            )
        unknown = [key for key in rates if key not in _PRICE_FIELDS]
        if unknown:
            raise ValueError(
                f"{source}[{model!r}] has unknown keys {sorted(map(str, unknown))}; "
                f"allowed: {', '.join(_PRICE_FIELDS)}"
            )
        missing = [key for key in _REQUIRED_PRICE_FIELDS if key not in rates]
        if missing:
            raise ValueError(f"{source}[{model!r}] is missing {', '.join(missing)} (USD per 1M tokens)")
        clean: dict[str, float] = {}
        for key, value in rates.items():
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"{source}[{model!r}][{key!r}] must be a number, got {value!r}")
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise ValueError(
                    f"{source}[{model!r}][{key!r}] must be a finite non-negative number, got {value!r}"
                )
            clean[key] = number
        out[model] = clean
    return out


def load_prices_file(path: str) -> dict[str, dict[str, float]]:
    """Read and validate a RESPAN_PRICES_FILE (JSON); raise ValueError naming it on any problem."""
    name = f"RESPAN_PRICES_FILE={path!r}"
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{name}: not valid JSON: {exc}") from None
    return validate_prices(data, name)


# ---------------------------------------------------------------------------
# provider from a client's base URL
# ---------------------------------------------------------------------------

# (host, or ".suffix" for any subdomain) -> genai-prices provider id
_HOSTS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure"),
    (".cognitiveservices.azure.com", "azure"),
    (".services.ai.azure.com", "azure"),
    (".azure-api.net", "azure"),
    ("api.groq.com", "groq"),
    ("api.together.xyz", "together"),
    ("api.together.ai", "together"),
    ("api.fireworks.ai", "fireworks"),
    ("api.deepseek.com", "deepseek"),
    ("api.mistral.ai", "mistral"),
    ("api.x.ai", "x-ai"),
    ("openrouter.ai", "openrouter"),
    ("api.openrouter.ai", "openrouter"),
    ("api.perplexity.ai", "perplexity"),
    ("generativelanguage.googleapis.com", "google"),
    (".aiplatform.googleapis.com", "google"),
    ("aiplatform.googleapis.com", "google"),
    ("api.anthropic.com", "anthropic"),
    ("api.cerebras.ai", "cerebras"),
    ("api.novita.ai", "novita"),
    ("api.moonshot.ai", "moonshotai"),
    ("api.moonshot.cn", "moonshotai"),
    ("api.cohere.ai", "cohere"),
    ("api.cohere.com", "cohere"),
    ("api.z.ai", "zai"),
    ("open.bigmodel.cn", "zhipuai"),
    ("api.minimax.io", "minimax"),
    ("api.minimaxi.com", "minimax"),
    ("api.avian.io", "avian"),
    ("api.arcee.ai", "arcee"),
    ("inference.baseten.co", "baseten"),
    ("api.doubleword.ai", "doubleword"),
    ("api.githubcopilot.com", "github-copilot"),
    ("oai.endpoints.kepler.ai.cloud.ovh.net", "ovhcloud"),
    (".cloud.databricks.com", "databricks"),
    (".azuredatabricks.net", "databricks"),
    (".gcp.databricks.com", "databricks"),
)
_HF_ROUTES = frozenset(
    {
        "cerebras",
        "fireworks-ai",
        "groq",
        "hyperbolic",
        "nebius",
        "novita",
        "nscale",
        "ovhcloud",
        "publicai",
        "sambanova",
        "together",
    }
)


def provider_from_base_url(url: Any) -> str | None:
    """genai-prices provider id for an OpenAI client's base URL, or None if unknown.

    None means "guess the provider from the model id" (genai-prices' model match,
    then OpenAI), which suits OpenAI-compatible proxies and gateways.
    """
    try:
        text = str(url).strip()
        if "//" not in text:
            text = "//" + text
        parts = urlsplit(text)
        host = (parts.hostname or "").lower().rstrip(".")
        path = parts.path
    except (TypeError, ValueError):
        return None
    if not host:
        return None
    for pattern, provider in _HOSTS:
        if pattern[0] == ".":
            if host.endswith(pattern):
                return provider
        elif host == pattern:
            return provider
    if host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"):
        return "aws"
    if host == "router.huggingface.co":
        route = path.strip("/").split("/", 1)[0].lower()
        return f"huggingface_{route}" if route in _HF_ROUTES else None
    if host == "api.cloudflare.com" and "/ai/" in path + "/":
        return "cloudflare"
    return None


# ---------------------------------------------------------------------------
# logging once
# ---------------------------------------------------------------------------

_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def _log_once(
    kind: str, model: str, level: int, message: str, *args: object, exc: BaseException | None = None
) -> None:
    """Log `message` the first time (`kind`, `model`) is seen in this process."""
    key = (kind, model)
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    logger.log(level, message, *args, exc_info=exc)


def _model_label(model: object) -> str:
    return model if isinstance(model, str) else repr(model)


# ---------------------------------------------------------------------------
# compiling a price into a function of TokenUsage
# ---------------------------------------------------------------------------

PriceFn = Callable[[TokenUsage], "float | None"]
# cache entry: (price function, or None for "no price"; unix time it expires, or None)
_Entry = tuple["PriceFn | None", "float | None"]

# A priced token unit: its usage key, its dimensions, and its price in USD per
# `per` units, as (tier start or None for the base, price) pairs, base first.
_Unit = tuple[str, frozenset[tuple[str, str]], int, tuple[tuple[Any, Any], ...]]
# (usage_key, dimensions, per, ((None, base price), (tier start, price), ...)); prices are Decimal or float

_TOKEN_DIMS: Mapping[str, frozenset[tuple[str, str]]] = {
    "input_tokens": frozenset({("family", "tokens"), ("direction", "input")}),
    "cache_read_tokens": frozenset(
        {("family", "tokens"), ("direction", "input"), ("token_type", "cache_read")}
    ),
    "output_tokens": frozenset({("family", "tokens"), ("direction", "output")}),
}


def _compile(units: list[_Unit], constant: float, label: str) -> PriceFn:
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
        if key in _USAGE_KEYS:
            expr[_USAGE_KEYS[key]] = 1
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


def _override_fn(model: str, rates: Mapping[str, float]) -> PriceFn:
    """A user price: input (uncached), cached input, output; all per 1M tokens."""
    cached = rates.get("cached_input", rates["input"])
    units: list[_Unit] = [
        ("input_tokens", _TOKEN_DIMS["input_tokens"], 1_000_000, ((None, rates["input"]),)),
        ("cache_read_tokens", _TOKEN_DIMS["cache_read_tokens"], 1_000_000, ((None, cached),)),
        ("output_tokens", _TOKEN_DIMS["output_tokens"], 1_000_000, ((None, rates["output"]),)),
    ]
    return _compile(units, 0.0, f"override {model}")


# ---------------------------------------------------------------------------
# genai-prices (imported lazily)
# ---------------------------------------------------------------------------

_gp: Any = None  # genai_prices modules once imported; False if not installed
_gp_lock = threading.Lock()


def _genai_prices() -> Any:
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


class _Unpriceable(Exception):
    """The model's price needs usage we do not have (e.g. audio seconds)."""


def _compile_model_price(model_price: Any, registry: Any, label: str) -> PriceFn:
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
        raise _Unpriceable(", ".join(sorted(other_units)))
    return _compile(units, constant, label)


def _next_change(info: Any, types: Any, now: datetime) -> float | None:
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


# ---------------------------------------------------------------------------
# model id fallbacks
# ---------------------------------------------------------------------------

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _fallback_ids(model: str) -> list[str]:
    """`ft:` wrapper stripped, then `-YYYY-MM-DD` suffix stripped."""
    ids: list[str] = []
    base = model
    if base.startswith("ft:"):
        base = base[3:].split(":", 1)[0]
        if base:
            ids.append(base)
    undated = _DATE_SUFFIX.sub("", base)
    if undated and undated != base:
        ids.append(undated)
    return ids


# ---------------------------------------------------------------------------
# PriceBook
# ---------------------------------------------------------------------------


class PriceBook:
    """Per-call USD cost, with lookups resolved once per model and cached.

    `overrides` is the user's `{model: {"input", "output", "cached_input"}}` in
    USD per 1M tokens; an override's key matches the exact model id or, failing
    that, any model id it is a prefix of (longest key wins). Overrides price
    every call the same (no service tier or Batch discounts).
    """

    __slots__ = ("_overrides", "_prefixes", "_cache")

    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self._overrides = validate_prices(overrides or {}, "prices")
        self._prefixes = sorted(self._overrides, key=len, reverse=True)
        self._cache: dict[tuple[Any, ...], _Entry] = {}

    def cost(
        self,
        model: str,
        usage: TokenUsage,
        *,
        provider: str | None = None,
        service_tier: str | None = None,
        batch: bool = False,
    ) -> float | None:
        """USD for one call, or None if the model has no known price or the usage is unusable.

        Never raises. `provider` is a genai-prices provider id (see
        `provider_from_base_url`); `service_tier` is the response's
        `service_tier` ("flex", "priority", ...); `batch` is the Batch API.
        """
        try:
            entry = self._cache[(model, provider, service_tier, batch)]
        except KeyError:
            entry = self._resolve(model, provider, service_tier, batch)
        except TypeError:  # unhashable argument
            _log_once(
                "args",
                repr(model),
                logging.WARNING,
                "respan_instrument: cannot price model %r (provider %r, service_tier %r)",
                model,
                provider,
                service_tier,
            )
            return None
        fn, expires = entry
        if expires is not None and time.time() >= expires:
            fn = self._resolve(model, provider, service_tier, batch)[0]
        if fn is None:
            return None
        if type(usage) is not TokenUsage:
            usage = _as_usage(usage)  # type: ignore[assignment]
        try:
            result: float | None = fn(usage)
        except (TypeError, ValueError, ArithmeticError):  # None counts, wrong shape, ...
            result = None
        if result is None:
            _log_once(
                "usage",
                _model_label(model),
                logging.WARNING,
                "respan_instrument: inconsistent token usage for model %r, cost not reported: %r",
                model,
                usage,
            )
        return result

    def warm(self) -> None:
        """Import genai-prices and load its data now (about 0.15 s), e.g. off the hot path."""
        gp = _genai_prices()
        if gp is not None:
            gp[0].get_snapshot().providers  # noqa: B018 - loads the bundled data

    # -- slow path, once per key --------------------------------------------------

    def _resolve(self, model: Any, provider: Any, service_tier: Any, batch: Any) -> _Entry:
        try:
            entry = self._lookup(model, provider, service_tier, batch)
        except Exception as exc:  # noqa: BLE001 - a bug or data surprise must not reach the caller
            _log_once(
                "error",
                _model_label(model),
                logging.WARNING,
                "respan_instrument: pricing model %r failed, cost not reported: %r",
                model,
                exc,
                exc=exc,
            )
            entry = (None, None)
        self._cache[(model, provider, service_tier, batch)] = entry
        return entry

    def _lookup(self, model: Any, provider: Any, service_tier: Any, batch: Any) -> _Entry:
        if not isinstance(model, str) or not model:
            _log_once(
                "unknown",
                _model_label(model),
                logging.WARNING,
                "respan_instrument: no model id (%r), cost not reported",
                model,
            )
            return (None, None)
        provider = provider.strip().lower() or None if isinstance(provider, str) else None
        context: dict[str, str] = {}
        if isinstance(service_tier, str) and service_tier:
            context["service_tier"] = service_tier
        if batch:
            context["processing"] = "batch"

        for ref in [model, *_fallback_ids(model)]:
            fn = self._override(ref)
            found = (fn, None) if fn is not None else self._from_genai_prices(ref, provider, context)
            if found is None:
                continue
            if ref != model:
                _log_once(
                    "fallback",
                    model,
                    logging.INFO,
                    "respan_instrument: no price for model %r, using the price of %r",
                    model,
                    ref,
                )
            return found

        _log_once(
            "unknown",
            model,
            logging.WARNING,
            "respan_instrument: no price for model %r (provider %r), cost not reported; "
            "add it with prices={%r: {'input': ..., 'output': ...}} (USD per 1M tokens) "
            "or RESPAN_PRICES_FILE",
            model,
            provider,
            model,
        )
        return (None, None)

    def _override(self, ref: str) -> PriceFn | None:
        rates = self._overrides.get(ref)
        key = ref
        if rates is None:
            key = next((prefix for prefix in self._prefixes if ref.startswith(prefix)), "")
            rates = self._overrides.get(key) if key else None
        return _override_fn(key, rates) if rates is not None else None

    def _from_genai_prices(self, ref: str, provider: str | None, context: dict[str, str]) -> _Entry | None:
        gp = _genai_prices()
        if gp is None:
            _log_once(
                "import",
                "genai-prices",
                logging.WARNING,
                "respan_instrument: genai-prices is not installed; only prices= / RESPAN_PRICES_FILE "
                "prices are used",
            )
            return None
        data_snapshot, types, registry = gp
        snapshot = data_snapshot.get_snapshot()

        found = None
        providers_to_try: list[str | None]
        if provider is None:
            providers_to_try = [None, "openai"]
        elif _known_provider(data_snapshot, snapshot, provider):
            providers_to_try = [provider]
        else:  # not a genai-prices provider id: guess from the model id
            providers_to_try = [None, "openai"]
        for provider_id in providers_to_try:
            try:
                found = snapshot.find_provider_model(ref, None, provider_id, None)
                break
            except LookupError:
                continue
        if found is None:
            return None
        gp_provider, info = found

        now = datetime.now(tz=timezone.utc)
        # As genai-prices' ModelInfo.calc_price: request-context variants (service
        # tier, batch) only apply when the model is the provider's own, not one
        # borrowed from a fallback provider (e.g. Azure -> OpenAI).
        own = any(info is candidate for candidate in gp_provider.models)
        model_price = info.get_prices(now, context if context and own else None)
        label = f"{gp_provider.id}:{info.id}"
        if registry is None:  # pragma: no cover - unknown genai-prices layout
            fn = _slow_fn(model_price)
        else:
            try:
                fn = _compile_model_price(model_price, registry, label)
            except _Unpriceable as exc:
                _log_once(
                    "unpriceable",
                    ref,
                    logging.WARNING,
                    "respan_instrument: model %r is priced by %s, not tokens; cost not reported",
                    ref,
                    str(exc),
                )
                return (None, _next_change(info, types, now))
        return (fn, _next_change(info, types, now))


def _known_provider(data_snapshot: Any, snapshot: Any, provider: str) -> bool:
    finder = getattr(data_snapshot, "find_provider_by_id", None)
    if finder is None:  # pragma: no cover
        return any(p.id == provider for p in snapshot.providers)
    return finder(snapshot.providers, provider) is not None


def _slow_fn(model_price: Any) -> PriceFn:  # pragma: no cover - only without genai-prices' unit registry
    """Price through genai-prices on every call (~50 us)."""
    from genai_prices import Usage

    def price(usage: TokenUsage) -> float | None:
        values = {key: getattr(usage, name) for key, name in _USAGE_KEYS.items()}
        try:
            return float(model_price.calc_price(Usage(**values))["total_price"])
        except Exception:  # noqa: BLE001 - cost() must never raise
            return None

    return price


def _as_usage(usage: Any) -> TokenUsage | None:
    """A TokenUsage from a mapping or an object with the same field names; None if impossible."""
    try:
        if isinstance(usage, Mapping):
            return TokenUsage(**{k: usage[k] for k in TokenUsage._fields if usage.get(k) is not None})
        return TokenUsage(**{k: v for k in TokenUsage._fields if (v := getattr(usage, k, None)) is not None})
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
