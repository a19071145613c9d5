"""Every unit the endpoint specs bill in besides tokens, gathered from the specs themselves: the
price book asks it for a unit's published rates and genai-prices keys, and the settings check the
user's per-unit price keys (`prices=` / RESPAN_PRICES_FILE) against it."""

from __future__ import annotations

from collections.abc import Mapping

from .base import Endpoint  # (the package's __init__ has loaded every endpoint module by now)
from .bill import PriceUnit


def _specs(cls: type[Endpoint]) -> list[type[Endpoint]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_specs(sub))
    return out


def _units() -> dict[str, PriceUnit]:
    units: dict[str, PriceUnit] = {}
    for spec in _specs(Endpoint):
        for declared in spec.price_units:
            units.setdefault(declared.unit, declared)
    return units


UNITS: Mapping[str, PriceUnit] = _units()
# the user's per-unit price keys (USD per unit), unit -> key
UNIT_PRICE_KEYS: Mapping[str, str] = {name: u.key for name, u in UNITS.items() if u.key is not None}

__all__ = ["UNITS", "UNIT_PRICE_KEYS"]
