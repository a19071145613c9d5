"""The price book (placeholder until the prices branch lands)."""

from __future__ import annotations

from .. import _cost
from .unit_prices import OVERRIDE_KEYS, published


class PriceBook(_cost.PriceBook):
    __slots__ = ()

    def unit_cost(self, model: str, unit: str, quantity: float, variant: str | None = None) -> float | None:
        """USD for `quantity` units (`image`, `audio_minute`, `1m_characters`) of `model`: the
        user's per-unit price first, then OpenAI's published one; None when neither knows it."""
        rates = self._overrides.get(model) if isinstance(model, str) else None
        rate = rates.get(OVERRIDE_KEYS.get(unit, "")) if rates else None
        if rate is None:
            rate = published(model, unit, variant) if isinstance(model, str) else None
        return None if rate is None else rate * quantity


__all__ = ["PriceBook"]
