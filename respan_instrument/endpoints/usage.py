"""Token counts of one call (placeholder until the prices branch lands)."""

from __future__ import annotations

from .._cost import TokenUsage

__all__ = ["TokenUsage"]
