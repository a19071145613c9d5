"""The user's per-unit prices (`per_image`, `per_audio_minute`, `per_1m_characters` in `prices=` /
RESPAN_PRICES_FILE, SPEC §10) win over OpenAI's published ones, price models nobody publishes,
and leave token pricing alone. The real SDK talks to the loopback stub; we assert on the cost
that reached the collector."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RESPAN_KEY, delivered, start

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub

MP3 = bytes(40 * 1024)
MINI_IN, MINI_OUT = 0.15e-6, 0.60e-6  # gpt-4o-mini, USD per token (genai-prices)

FILE_PRICES = {
    "dall-e-3": {"per_image": 0.5},
    "whisper-1": {"per_audio_minute": 0.01},
    "tts-1": {"per_1m_characters": 20.0},
    "gpt-4o-mini": {"per_image": 7.0},  # per-unit only: its tokens keep genai-prices' rates
    "acme-draw": {"per_image": 0.25},  # a prefix: acme-draw-v2, acme-draw-2026-01-01, ...
}


@pytest.fixture()
def prices_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(FILE_PRICES))
    monkeypatch.setenv("RESPAN_PRICES_FILE", str(path))
    return str(path)


@pytest.fixture()
def priced(prices_file: str, collector: Collector, stub: OpenAIStub) -> Iterator[Collector]:
    """Instrumented with RESPAN_PRICES_FILE set."""
    stub.clear()
    start(collector)
    yield collector
    respan_instrument.uninstrument()


@pytest.mark.parametrize(("size", "quality"), [("1024x1024", None), ("1024x1792", "hd")])
def test_per_image_override_beats_the_published_price(priced, client, size, quality) -> None:
    extra = {"quality": quality} if quality else {}
    result = client.images.generate(model="dall-e-3", prompt="A red kite", size=size, **extra)
    (log,) = delivered(priced)
    assert len(result.data) == 1
    assert log["cost"] == pytest.approx(0.5, rel=1e-12)  # published: 0.04 and 0.12


def test_per_image_override_by_prefix_prices_an_unpublished_model(priced, client) -> None:
    client.images.generate(model="acme-draw-v2", prompt="A boat", size="512x512", n=3)
    (log,) = delivered(priced)
    assert log["cost"] == pytest.approx(3 * 0.25, rel=1e-12)


def test_unit_prices_without_an_override_stay_published(priced, client) -> None:
    client.images.generate(model="dall-e-2", prompt="A boat", size="256x256", n=2)
    (log,) = delivered(priced)
    assert log["cost"] == pytest.approx(2 * 0.016, rel=1e-12)


def test_per_audio_minute_override(priced, client) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("talk.mp3", MP3, "audio/mpeg"), response_format="verbose_json"
    )
    (log,) = delivered(priced)
    assert result.duration > 0
    assert log["cost"] == pytest.approx(result.duration / 60 * 0.01, rel=1e-12)  # published: 0.006


def test_per_1m_characters_override(priced, client) -> None:
    text = "Per-unit prices of the user's own."
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    (log,) = delivered(priced)
    assert audio.content
    assert log["cost"] == pytest.approx(len(text) / 1e6 * 20.0, rel=1e-12)  # published: 15


def test_per_unit_only_entry_leaves_token_prices_alone(priced, client) -> None:
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    (log,) = delivered(priced)
    usage = response.usage
    assert not (usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens)
    assert log["cost"] == pytest.approx(usage.prompt_tokens * MINI_IN + usage.completion_tokens * MINI_OUT)


def test_prices_argument_wins_over_the_file(prices_file, collector, stub, client) -> None:
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", prices={"dall-e-3": {"per_image": 0.75}}
    )
    try:
        client.images.generate(model="dall-e-3", prompt="A red kite", size="1024x1024")
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    assert log["cost"] == pytest.approx(0.75, rel=1e-12)


def test_tokens_and_units_in_one_entry(collector, stub, client) -> None:
    """GPT Image answers with token usage: its token prices apply, not its per-image one."""
    respan_instrument.instrument(
        api_key=RESPAN_KEY,
        base_url=collector.url + "/api",
        prices={"gpt-image-1": {"input": 1.0, "output": 2.0, "per_image": 100.0}},
    )
    try:
        result = client.images.generate(model="gpt-image-1", prompt="A lighthouse", size="1024x1024")
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    usage = result.usage
    assert log["cost"] == pytest.approx(usage.input_tokens * 1e-6 + usage.output_tokens * 2e-6, rel=1e-9)


def test_async_per_image_override(priced, aclient) -> None:
    async def main() -> Any:
        async with aclient() as c:
            return await c.images.generate(model="dall-e-3", prompt="A red kite", size="1024x1024", n=1)

    result = asyncio.run(main())
    (log,) = delivered(priced)
    assert len(result.data) == 1
    assert log["cost"] == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize(
    ("prices", "fragment"),
    [
        ({"m": {"per_image": -1}}, "non-negative"),
        ({"m": {"per_image": "cheap"}}, "must be a number"),
        ({"m": {"per_image": 1.0, "input": 1.0}}, "missing output"),
        ({"m": {"per_pixel": 1.0}}, "unknown keys ['per_pixel']"),
    ],
)
def test_bad_per_unit_prices_fail_at_instrument(prices, fragment) -> None:
    with pytest.raises(ValueError) as info:
        respan_instrument.instrument(api_key="k", prices=prices)
    assert fragment in str(info.value) and str(info.value).startswith("prices")
