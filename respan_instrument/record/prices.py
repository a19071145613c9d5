"""USD cost of one call: the price book.

Lookup order for a model id (`PriceBook.cost`):

1. user prices (`prices=` / `RESPAN_PRICES_FILE`): the exact model id, then the
   longest key that is a prefix of it (e.g. `ft:gpt-4o-mini` for
   `ft:gpt-4o-mini:org::abc`);
2. `genai-prices`, for the provider given (a genai-prices provider id, see
   `endpoints.providers.price_provider`) or, with no provider, the provider genai-prices
   guesses from the model id, then OpenAI;
3. the same two steps again for the id with its `ft:` wrapper stripped
   (`ft:gpt-4.1-2025-04-14:org::x` -> `gpt-4.1-2025-04-14`), then with its
   `-YYYY-MM-DD` suffix stripped (`gpt-4.1`).

What is not billed by the token (`PriceBook.unit_cost`: images, audio minutes, characters, web
and file search calls; the units the endpoint specs declare, `endpoints.price_units`) is priced
by the user's per-unit prices in the same order, then by genai-prices where it has a non-zero
price for that unit, then by OpenAI's published ones the unit's spec holds. An unknown model
costs None (never 0) and logs one warning per model per process. Each lookup is resolved once
and cached (see `prices_compile`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._config import validate_prices
from .._errors import log_once, report
from ..endpoints.bill import PriceUnit
from ..endpoints.price_units import UNIT_PRICE_KEYS, UNITS
from ..endpoints.usage import TokenUsage, as_token_usage
from . import prices_compile as _compiled
from .prices_compile import PriceFn

# cache entry: (price function, or None for "no price"; unix time it expires, or None)
_Entry = tuple["PriceFn | None", "float | None"]

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


def _label(model: object) -> str:
    return model if isinstance(model, str) else repr(model)


def _warn_once(kind: str, model: object, message: str, *args: object, level: int = logging.WARNING) -> None:
    log_once(f"prices:{kind}:{_label(model)}", message, *args, level=level)


class PriceBook:
    """Per-call USD cost, with lookups resolved once per model and cached.

    `overrides` is the user's `{model: {"input", "output", "cached_input", "cache_write"}}` in
    USD per 1M tokens, and/or per-unit prices in USD per unit (the keys the endpoint specs
    declare: `per_image`, `per_audio_minute`, `per_web_search_call`, ...);
    an override's key matches the exact model id or, failing that, any model id it is a prefix
    of (longest key wins). Overrides price every call the same (no service tier or Batch
    discounts).
    """

    __slots__ = ("_overrides", "_prefixes", "_cache", "_units")

    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self._overrides = validate_prices(overrides or {}, "prices", UNIT_PRICE_KEYS.values())
        self._prefixes = sorted(self._overrides, key=len, reverse=True)
        self._cache: dict[tuple[Any, ...], _Entry] = {}
        # (model, unit, variant, provider, batch) -> (USD per unit or None, unix time it expires)
        self._units: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}

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
        `endpoints.providers.price_provider`); `service_tier` is the response's
        `service_tier` ("flex", "priority", ...); `batch` is the Batch API.
        """
        try:
            entry = self._cache[(model, provider, service_tier, batch)]
        except KeyError:
            entry = self._resolve(model, provider, service_tier, batch)
        except TypeError:  # unhashable argument
            _warn_once(
                "args",
                repr(model),
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
            usage = as_token_usage(usage)  # type: ignore[assignment]
        try:
            result: float | None = fn(usage)
        except (TypeError, ValueError, ArithmeticError):  # None counts, wrong shape, ...
            result = None
        if result is None:
            _warn_once(
                "usage",
                model,
                "respan_instrument: inconsistent token usage for model %r, cost not reported: %r",
                model,
                usage,
            )
        return result

    def unit_cost(
        self,
        model: str,
        unit: str,
        quantity: float,
        variant: str | None = None,
        *,
        provider: str | None = None,
        batch: bool = False,
    ) -> float | None:
        """USD for `quantity` units (`image`, `audio_minute`, `web_search_call`, ...) of `model`:
        the user's per-unit price first (exact id, prefix, then the id's fallbacks as for
        tokens), then genai-prices', then OpenAI's published one; None when none knows it.
        Never raises."""
        if not isinstance(model, str) or not model:
            return None
        key = (model, unit, variant, provider, batch)
        try:
            entry = self._units.get(key)
        except TypeError:  # unhashable argument
            return None
        if entry is None or (entry[1] is not None and time.time() >= entry[1]):
            try:
                entry = self._unit_rate(model, unit, variant, provider, batch)
            except Exception as exc:  # noqa: BLE001 - a bug or data surprise must not reach the caller
                report("pricing a unit", exc)
                entry = (None, None)
            self._units[key] = entry
        rate = entry[0]
        return None if rate is None else rate * quantity

    def _unit_rate(
        self, model: str, unit: str, variant: str | None, provider: Any, batch: bool
    ) -> tuple[float | None, float | None]:
        spec: PriceUnit | None = UNITS.get(unit)
        if spec is None:
            return None, None
        refs = (model, *_fallback_ids(model))
        if spec.key is not None:
            for ref in refs:
                rates = self._override_rates(ref, spec.key)
                if rates is not None:
                    return rates[spec.key], None
        if spec.genai_keys:
            provider = provider.strip().lower() or None if isinstance(provider, str) else None
            context = {"processing": "batch"} if batch else {}
            for ref in refs:
                found = self._genai_model_price(ref, provider, context)
                if found is None:
                    continue
                model_price, expires, _ = found
                gp = _compiled.genai_prices()
                registry = gp[2] if gp is not None else None
                for price_key in spec.genai_keys:
                    value = getattr(model_price, price_key, None)
                    value = getattr(value, "base", value)  # (tiered: its base price)
                    if value and registry is not None:  # (0 for a model that is not free: unknown)
                        per = registry.unit_for_price_key(price_key).per
                        return float(value) / per * spec.scale, expires
        for ref in refs:
            rate = _published(spec, ref, variant)
            if rate is not None:
                return rate, None
        return None, None

    def warm(self) -> None:
        """Import genai-prices and load its data now (about 0.15 s), e.g. off the hot path."""
        gp = _compiled.genai_prices()
        if gp is not None:
            gp[0].get_snapshot().providers  # noqa: B018 - loads the bundled data

    # -- slow path, once per key --------------------------------------------------

    def _resolve(self, model: Any, provider: Any, service_tier: Any, batch: Any) -> _Entry:
        try:
            entry = self._lookup(model, provider, service_tier, batch)
        except Exception as exc:  # noqa: BLE001 - a bug or data surprise must not reach the caller
            report("pricing a model", exc)
            entry = (None, None)
        self._cache[(model, provider, service_tier, batch)] = entry
        return entry

    def _lookup(self, model: Any, provider: Any, service_tier: Any, batch: Any) -> _Entry:
        if not isinstance(model, str) or not model:
            _warn_once("unknown", model, "respan_instrument: no model id (%r), cost not reported", model)
            return (None, None)
        provider = provider.strip().lower() or None if isinstance(provider, str) else None
        context: dict[str, str] = {}
        if isinstance(service_tier, str) and service_tier:
            context["service_tier"] = service_tier
        if batch:
            context["processing"] = "batch"

        for ref in [model, *_fallback_ids(model)]:
            rates = self._override_rates(ref, "input")
            found = (
                (_compiled.override_fn(ref, rates), None)
                if rates is not None
                else self._from_genai_prices(ref, provider, context)
            )
            if found is None:
                continue
            if ref != model:
                _warn_once(
                    "fallback",
                    model,
                    "respan_instrument: no price for model %r, using the price of %r",
                    model,
                    ref,
                    level=logging.INFO,
                )
            return found

        _warn_once(
            "unknown",
            model,
            "respan_instrument: no price for model %r (provider %r), cost not reported; "
            "add it with prices={%r: {'input': ..., 'output': ...}} (USD per 1M tokens) "
            "or RESPAN_PRICES_FILE",
            model,
            provider,
            model,
        )
        return (None, None)

    def _override_rates(self, ref: str, key: str) -> Mapping[str, float] | None:
        """The user's prices for `ref` that include `key`: the exact id's, else the longest
        prefix's."""
        rates = self._overrides.get(ref)
        if rates is not None and key in rates:
            return rates
        for prefix in self._prefixes:
            if ref.startswith(prefix) and key in self._overrides[prefix]:
                return self._overrides[prefix]
        return None

    def _genai_model_price(
        self, ref: str, provider: str | None, context: dict[str, str]
    ) -> tuple[Any, float | None, str] | None:
        """genai-prices' ModelPrice for `ref` now, when it may change, and a label naming it;
        None if unknown."""
        gp = _compiled.genai_prices()
        if gp is None:
            _warn_once(
                "import",
                "genai-prices",
                "respan_instrument: genai-prices is not installed; only prices= / RESPAN_PRICES_FILE "
                "prices are used",
            )
            return None
        data_snapshot, types, _ = gp
        snapshot = data_snapshot.get_snapshot()

        found = None
        providers_to_try: list[str | None]
        if provider is not None and _compiled.known_provider(data_snapshot, snapshot, provider):
            providers_to_try = [provider]
        else:  # none, or not a genai-prices provider id: guess from the model id, then OpenAI
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
        return model_price, _compiled.next_change(info, types, now), f"{gp_provider.id}:{info.id}"

    def _from_genai_prices(self, ref: str, provider: str | None, context: dict[str, str]) -> _Entry | None:
        found = self._genai_model_price(ref, provider, context)
        if found is None:
            return None
        model_price, expires, label = found
        registry = _compiled.genai_prices()[2]
        if registry is None:  # pragma: no cover - unknown genai-prices layout
            fn = _compiled.slow_fn(model_price)
        else:
            try:
                fn = _compiled.compile_model_price(model_price, registry, label)
            except _compiled.Unpriceable as exc:
                _warn_once(
                    "unpriceable",
                    ref,
                    "respan_instrument: model %r is priced by %s, not tokens; cost not reported",
                    ref,
                    str(exc),
                )
                return (None, expires)
        return (fn, expires)


def _published(spec: PriceUnit, model: str, variant: str | None) -> float | None:
    """OpenAI's published price of one unit of `model` in `variant` (or its size alone, for an
    image priced by size only), as the unit's spec holds it; None when it has none."""
    rates = spec.published.get(model) or spec.published.get(_DATE_SUFFIX.sub("", model.lower()))
    if rates is None:
        rates = spec.published.get("*")
    if rates is None:
        return None
    for kind in (variant, variant.split("/", 1)[0] if variant else None, None):
        rate = rates.get(kind)
        if rate is not None:
            return rate
    return None


@functools.lru_cache(maxsize=256)
def _audio_minute_rate(model: str) -> float | None:
    """genai-prices' USD per minute of audio time for an OpenAI model (`audio_hours`: Live,
    realtime transcription and translation models); None where it has none, or 0."""
    gp = _compiled.genai_prices()
    if gp is None:
        return None
    try:
        _, info = gp[0].get_snapshot().find_provider_model(model, None, "openai", None)
        hourly = getattr(info.get_prices(datetime.now(tz=timezone.utc)), "audio_hours", None)
    except LookupError:
        return None
    except Exception as exc:  # noqa: BLE001 - a data surprise must not reach the caller
        report("pricing audio time", exc)
        return None
    return float(hourly) / 60.0 if hourly else None


__all__ = ["PriceBook"]
