"""OpenAI's published prices for what is not billed by the token, for models `genai-prices`
does not price in these units (DALL·E), as a fallback where it does.

Read from https://openai.com/api/pricing on 2026-12-05. Images are priced per image by size
and quality, transcription and translation per minute of audio, speech per 1M characters of
input. A model missing here and in genai-prices has no cost, never 0. The user's per-unit
prices (`per_image`, `per_audio_minute`, `per_1m_characters` in `prices=` / RESPAN_PRICES_FILE,
see `_config.UNIT_PRICE_KEYS`) win over these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

READ_ON = "2026-12-05"

# unit -> model -> variant (None: any) -> USD per unit
PUBLISHED: Mapping[str, Mapping[str, Mapping[str | None, float]]] = {
    "image": {
        "dall-e-3": {
            "1024x1024/standard": 0.040,
            "1024x1792/standard": 0.080,
            "1792x1024/standard": 0.080,
            "1024x1024/hd": 0.080,
            "1024x1792/hd": 0.120,
            "1792x1024/hd": 0.120,
        },
        "dall-e-2": {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.020},
    },
    "audio_minute": {"whisper-1": {None: 0.006}},
    "1m_characters": {"tts-1": {None: 15.0}, "tts-1-hd": {None: 30.0}},
}

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def published(model: str, unit: str, variant: str | None) -> float | None:
    """USD for one `unit` of `model` in `variant`, or None when no price is published here."""
    models = PUBLISHED.get(unit)
    if not models:
        return None
    rates = models.get(model) or models.get(_DATE_SUFFIX.sub("", model.lower()))
    if rates is None:
        return None
    rate = rates.get(variant)
    return rate if rate is not None else rates.get(None)
