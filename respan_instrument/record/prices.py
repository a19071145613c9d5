"""The price book (placeholder until the prices branch lands)."""

from __future__ import annotations

from .._cost import PriceBook

__all__ = ["PriceBook"]
