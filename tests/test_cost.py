"""Tests for the price book (record/prices*.py), the host table's price providers and the price
settings: prices, lookups, caching, fallbacks, errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import warnings

import pytest
from conftest import child_env

from respan_instrument import _logger
from respan_instrument._config import load_prices_file, validate_prices
from respan_instrument.endpoints import providers
from respan_instrument.endpoints.providers import price_provider as provider_from_base_url
from respan_instrument.endpoints.usage import TokenUsage
from respan_instrument.record import prices_compile
from respan_instrument.record.prices import PriceBook

genai_prices = pytest.importorskip("genai_prices")
from genai_prices import Usage, calc_price, data_snapshot  # noqa: E402

M = 1_000_000


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch):
    """Each test sees its own 'warned once' memory."""
    monkeypatch.setattr(_logger, "_seen", set())


def approx(value: float):
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def genai_total(model, usage: TokenUsage, provider=None, context=None) -> float:
    values = {key: getattr(usage, name) for key, name in prices_compile.USAGE_KEYS.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            calc_price(Usage(**values), model, provider_id=provider, price_context=context).total_price
        )


def model_price(provider_id: str, model: str):
    provider, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    return info.get_prices(_now())


def _now():
    from datetime import datetime, timezone

    return datetime.now(tz=timezone.utc)


# --- genai-prices data we rely on below -------------------------------------------


def test_gpt_4o_mini_rates_in_genai_prices():
    prices = model_price("openai", "gpt-4o-mini")
    assert (float(prices.input_mtok), float(prices.cache_read_mtok), float(prices.output_mtok)) == (
        0.15,
        0.075,
        0.60,
    )


# --- OpenAI prices --------------------------------------------------------------


def test_gpt_4o_mini_exact_usd():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    assert book.cost("gpt-4o-mini", usage) == approx((1000 * 0.15 + 500 * 0.60) / M)
    assert book.cost("gpt-4o-mini", usage, provider="openai") == approx(0.00045)


def test_dated_snapshot():
    book = PriceBook()
    usage = TokenUsage(input_tokens=2000, output_tokens=100)
    assert book.cost("gpt-4o-mini-2024-07-18", usage, provider="openai") == approx(
        (2000 * 0.15 + 100 * 0.60) / M
    )


def test_cached_input_at_cached_rate():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    expected = (600 * 0.15 + 400 * 0.075 + 500 * 0.60) / M
    assert book.cost("gpt-4o-mini", usage) == approx(expected)
    assert expected == approx(genai_total("gpt-4o-mini", usage, "openai"))


def test_o_series_reasoning_is_output_not_double_counted():
    assert float(model_price("openai", "o4-mini").input_mtok) == 1.1
    assert float(model_price("openai", "o4-mini").output_mtok) == 4.4
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=2000, reasoning_tokens=1500)
    assert book.cost("o4-mini", usage) == approx((1000 * 1.1 + 2000 * 4.4) / M)
    assert book.cost("o4-mini", usage) == book.cost("o4-mini", usage._replace(reasoning_tokens=0))


def test_service_tier_flex_and_priority():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=200)
    # o4-mini: flex 0.55 / 0.138 cached / 2.2; gpt-4o-mini: priority 0.25 / 0.125 cached / 1.0
    assert book.cost("o4-mini", usage, service_tier="flex") == approx(
        (800 * 0.55 + 200 * 0.138 + 500 * 2.2) / M
    )
    assert book.cost("gpt-4o-mini", usage, service_tier="priority") == approx(
        (800 * 0.25 + 200 * 0.125 + 500 * 1.0) / M
    )
    standard = book.cost("gpt-4o-mini", usage)
    assert book.cost("gpt-4o-mini", usage, service_tier="default") == standard
    assert book.cost("gpt-4o-mini", usage, service_tier="scale") == standard  # no such variant
    for tier in ("flex", "priority"):
        assert book.cost("o4-mini", usage, service_tier=tier) == approx(
            genai_total("o4-mini", usage, "openai", {"service_tier": tier})
        )


def test_batch():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    assert book.cost("gpt-4o-mini", usage, batch=True) == approx((1000 * 0.075 + 500 * 0.3) / M)
    assert book.cost("gpt-4o-mini", usage, batch=True) == approx(
        genai_total("gpt-4o-mini", usage, "openai", {"processing": "batch"})
    )


def test_long_context_tiers_per_call():
    book = PriceBook()
    small = TokenUsage(input_tokens=200_000, output_tokens=1000, cached_input_tokens=50_000)
    large = TokenUsage(input_tokens=300_000, output_tokens=1000, cached_input_tokens=50_000)
    cost_small = book.cost("gpt-5.4", small)
    cost_large = book.cost("gpt-5.4", large)  # same cached lookup, other tier
    assert cost_small == approx(genai_total("gpt-5.4", small, "openai"))
    assert cost_large == approx(genai_total("gpt-5.4", large, "openai"))
    assert cost_large / 300_000 > cost_small / 200_000 * 1.5


def test_audio_tokens():
    book = PriceBook()
    usage = TokenUsage(
        input_tokens=1000,
        output_tokens=800,
        input_audio_tokens=600,
        output_audio_tokens=500,
        cached_input_tokens=100,
    )
    got = book.cost("gpt-realtime", usage, provider="openai")
    assert got == approx(genai_total("gpt-realtime", usage, "openai"))
    text_only = book.cost("gpt-realtime", usage._replace(input_audio_tokens=0, output_audio_tokens=0))
    assert got > text_only


def test_azure_provider():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    # Azure's own entry
    assert book.cost("o4-mini", usage, provider="azure") == approx(genai_total("o4-mini", usage, "azure"))
    # borrowed from OpenAI through genai-prices' fallback providers
    assert book.cost("gpt-4o-mini", usage, provider="azure") == approx(
        genai_total("gpt-4o-mini", usage, "azure")
    )
    # as in genai-prices, OpenAI's service-tier variants do not apply to a borrowed model
    assert book.cost("gpt-4o-mini", usage, provider="azure", service_tier="priority") == approx(
        genai_total("gpt-4o-mini", usage, "azure", {"service_tier": "priority"})
    )


def test_unknown_provider_id_guesses_from_model():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    assert book.cost("gpt-4o-mini", usage, provider="my-proxy") == approx(0.00045)


def test_no_provider_falls_back_to_openai():
    # genai-prices' own guess by model id does not cover "text-embedding-*"
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=0)
    with pytest.raises(LookupError):
        calc_price(Usage(input_tokens=1000), "text-embedding-3-small")
    assert book.cost("text-embedding-3-small", usage) == approx(1000 * 0.02 / M)


def test_parity_with_genai_prices_openai_and_azure():
    """Compiled prices agree with genai_prices.calc_price for every OpenAI/Azure model entry."""
    from genai_prices import types

    book = PriceBook()
    usages = [
        TokenUsage(1000, 500),
        TokenUsage(10_000, 2000, cached_input_tokens=3000, reasoning_tokens=700),
        TokenUsage(
            300_000,
            5000,
            cached_input_tokens=100_000,
            reasoning_tokens=1000,
            input_audio_tokens=20_000,
            output_audio_tokens=1000,
            cache_write_tokens=10_000,
            cached_audio_tokens=5000,
            input_image_tokens=30_000,
            output_image_tokens=1000,
            cached_image_tokens=2000,
        ),
    ]
    checked = 0
    for provider in data_snapshot.get_snapshot().providers:
        if provider.id not in ("openai", "azure"):
            continue
        for model in provider.models:
            match = model.match
            while isinstance(match, types.ClauseOr):
                match = match.or_[0]
            if isinstance(match, types.ClauseEquals):
                ref = match.equals
            elif isinstance(match, types.ClauseStartsWith):
                ref = match.starts_with + "x"
            else:
                continue
            for tier, batch in ((None, False), ("flex", False), ("priority", False), (None, True)):
                context = {
                    **({"service_tier": tier} if tier else {}),
                    **({"processing": "batch"} if batch else {}),
                }
                for usage in usages:
                    expected = genai_total(ref, usage, provider.id, context or None)
                    got = book.cost(ref, usage, provider=provider.id, service_tier=tier, batch=batch)
                    if got is None:  # priced by seconds/characters, not tokens
                        assert expected == 0, ref
                        continue
                    assert got == approx(expected), (provider.id, ref, tier, batch, usage)
                    checked += 1
    assert checked > 1000


def test_priced_by_seconds_not_tokens_is_none(caplog):
    caplog.set_level(logging.WARNING, logger="respan_instrument")
    assert PriceBook().cost("whisper-1", TokenUsage(10, 10)) is None
    assert "whisper-1" in caplog.text


# --- user prices ----------------------------------------------------------------


def test_override_exact_beats_genai_prices():
    book = PriceBook({"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    # no cached_input: cached tokens cost the input rate
    assert book.cost("gpt-4o-mini", usage) == approx((1000 * 1.0 + 500 * 2.0) / M)
    # overrides ignore tiers / batch
    assert book.cost("gpt-4o-mini", usage, service_tier="flex", batch=True) == approx(0.002)


def test_override_prefix_for_fine_tuned():
    book = PriceBook(
        {
            "ft:gpt-4o-mini": {"input": 0.3, "output": 1.2, "cached_input": 0.15},
            "ft:": {"input": 100.0, "output": 100.0},  # shorter prefix loses
        }
    )
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    expected = (600 * 0.3 + 400 * 0.15 + 500 * 1.2) / M
    assert book.cost("ft:gpt-4o-mini:org::abc", usage) == approx(expected)
    assert book.cost("ft:gpt-4o-mini-2024-07-18:org:name:abc123", usage) == approx(expected)
    assert book.cost("ft:gpt-4o:org::abc", usage) == approx((1000 * 100.0 + 500 * 100.0) / M)


def test_override_used_for_stripped_id():
    book = PriceBook({"acme-chat": {"input": 1.0, "output": 1.0}})
    assert book.cost("acme-chat-2025-01-31", TokenUsage(1000, 1000)) == approx(0.002)


# --- fallbacks: ft: wrapper and date suffix ---------------------------------------


def test_ft_wrapper_stripped_when_genai_prices_has_no_entry(caplog):
    caplog.set_level(logging.INFO, logger="respan_instrument")
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    # genai-prices has no ft:gpt-4.1* / ft:o4-mini entries: the base model's price is used
    assert book.cost("ft:gpt-4.1-2025-04-14:acme::9xYz", usage) == approx((600 * 2 + 400 * 0.5 + 500 * 8) / M)
    assert book.cost("ft:o4-mini-2025-04-16:acme::abc", usage) == approx(book.cost("o4-mini", usage))
    assert "using the price of 'gpt-4.1-2025-04-14'" in caplog.text
    # genai-prices does have ft:gpt-4o-mini-2024-* (no cached rate: cached tokens at input rate)
    assert book.cost("ft:gpt-4o-mini-2024-07-18:acme::abc", usage) == approx((1000 * 0.3 + 500 * 1.2) / M)


def test_unknown_date_suffix_stripped():
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    assert book.cost("gpt-4o-mini-2031-12-24", usage) == approx(0.00045)


# --- unknown models and odd input ------------------------------------------------


def test_unknown_model_none_and_one_warning(caplog):
    caplog.set_level(logging.DEBUG, logger="respan_instrument")
    book = PriceBook()
    usage = TokenUsage(input_tokens=10, output_tokens=10)
    assert book.cost("acme-unknown-llm", usage) is None
    assert PriceBook().cost("acme-unknown-llm", usage) is None  # once per process, not per book
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    record = warnings_[0]
    assert record.name == "respan_instrument"
    assert "acme-unknown-llm" in record.getMessage()
    assert record.args and "%r" in record.msg  # %-style, formatted lazily


def test_inconsistent_usage_is_none_with_one_warning(caplog):
    caplog.set_level(logging.WARNING, logger="respan_instrument")
    book = PriceBook()
    bad = TokenUsage(input_tokens=100, output_tokens=10, cached_input_tokens=400)
    assert book.cost("gpt-4o-mini", bad) is None
    assert book.cost("gpt-4o-mini", bad) is None
    assert len(caplog.records) == 1
    assert book.cost("gpt-4o-mini", TokenUsage(-1, 10)) is None


@pytest.mark.parametrize(
    "model, usage, kwargs",
    [
        ("gpt-4o-mini", TokenUsage(None, 10), {}),  # type: ignore[arg-type]
        ("gpt-4o-mini", "not usage", {}),
        ("gpt-4o-mini", None, {}),
        (None, TokenUsage(1, 1), {}),
        (123, TokenUsage(1, 1), {}),
        ("", TokenUsage(1, 1), {}),
        ("gpt-4o-mini", TokenUsage(1, 1), {"service_tier": ["flex"]}),
        ("gpt-4o-mini", TokenUsage(1, 1), {"provider": 42}),
    ],
)
def test_odd_input_never_raises(model, usage, kwargs):
    result = PriceBook().cost(model, usage, **kwargs)
    if kwargs.get("provider") == 42:
        assert result == approx((0.15 + 0.6) / M)  # junk provider: guess from the model id
    else:
        assert result is None


def test_usage_like_objects_are_accepted():
    book = PriceBook()
    expected = book.cost("gpt-4o-mini", TokenUsage(1000, 500, cached_input_tokens=400))
    assert (
        book.cost("gpt-4o-mini", {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 400})
        == expected
    )

    class Obj:
        input_tokens = 1000
        output_tokens = 500
        cached_input_tokens = 400

    assert book.cost("gpt-4o-mini", Obj()) == expected


# --- caching ---------------------------------------------------------------------


def test_second_lookup_does_not_call_genai_prices(monkeypatch):
    calls = []
    original = data_snapshot.DataSnapshot.find_provider_model

    def counting(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(data_snapshot.DataSnapshot, "find_provider_model", counting)
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    first = book.cost("gpt-4o-mini", usage)
    assert calls == ["gpt-4o-mini"]
    for n in range(5):
        assert book.cost("gpt-4o-mini", usage._replace(input_tokens=1000 + n)) is not None
    assert book.cost("gpt-4o-mini", usage) == first
    assert calls == ["gpt-4o-mini"]
    # unknown models are cached too
    book.cost("acme-unknown-2", usage)
    n_calls = len(calls)
    book.cost("acme-unknown-2", usage)
    assert len(calls) == n_calls


def test_price_is_resolved_again_when_it_may_change(monkeypatch):
    book = PriceBook()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    assert book.cost("gpt-4o-mini", usage) is not None
    key = ("gpt-4o-mini", None, None, False)
    fn, expires = book._cache[key]
    assert expires is None  # no future price change in the data
    book._cache[key] = (lambda u: 123.0, 1.0)  # pretend it expired in 1970
    assert book.cost("gpt-4o-mini", usage) == approx(0.00045)
    # deepseek has off-peak (time of day) prices: its entry expires
    book.cost("deepseek-chat", usage)
    expires = book._cache[("deepseek-chat", None, None, False)][1]
    assert expires is not None and 0 < expires - time.time() <= 24 * 3600


def test_genai_prices_missing_uses_overrides_only(collector, stub, tmp_path):
    """An app where genai-prices cannot be imported (as when it is not installed): the model its
    overrides price has a cost, any other none, and one warning says why."""
    code = (
        "import logging, os, sys\n"
        "sys.modules['genai_prices'] = None  # `import genai_prices` fails: not installed\n"
        "import openai, respan_instrument\n"
        "logging.basicConfig(format='%(name)s %(message)s')\n"
        "respan_instrument.instrument(prices={'gpt-4o-mini': {'input': 1.0, 'output': 1.0}})\n"
        "client = openai.OpenAI(api_key='sk-x', base_url=os.environ['STUB_URL'], max_retries=0)\n"
        "for model in ('gpt-4o-mini', 'o4-mini'):\n"
        "    client.chat.completions.create(model=model, messages=[{'role': 'user', 'content': 'hi'}])\n"
        "assert respan_instrument.flush(10)\n"
    )
    env = child_env(collector, stub, str(tmp_path / "spool"))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, errors="replace", timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("genai-prices is not installed") == 1, done.stderr
    priced, unpriced = sorted(collector.logs, key=lambda log: log["model"])
    assert priced["model"].startswith("gpt-4o-mini") and unpriced["model"].startswith("o4-mini")
    assert priced["cost"] == approx((priced["prompt_tokens"] + priced["completion_tokens"]) / M)
    assert "cost" not in unpriced


def test_genai_prices_imported_lazily():
    """Importing the package, the price book and the host table, building a book and asking for
    a provider import no genai-prices; the first price does."""
    code = (
        "import sys\n"
        "import respan_instrument\n"
        "from respan_instrument.record.prices import PriceBook\n"
        "from respan_instrument.endpoints.providers import price_provider\n"
        "from respan_instrument.endpoints.usage import TokenUsage\n"
        "assert 'genai_prices' not in sys.modules, 'imported at module import'\n"
        "b = PriceBook({'m': {'per_image': 1.0}})\n"
        "assert 'genai_prices' not in sys.modules, 'imported by PriceBook()'\n"
        "assert price_provider('https://api.openai.com/v1') == 'openai'\n"
        "assert b.unit_cost('dall-e-3', 'image', 1, '1024x1024/standard') == 0.04\n"
        "assert 'genai_prices' not in sys.modules\n"
        "assert b.cost('gpt-4o-mini', TokenUsage(1000, 500)) is not None\n"
        "assert 'genai_prices' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_instrument_imports_genai_prices_off_the_callers_thread(tmp_path):
    """`instrument()` returns without importing genai-prices: a thread of ours imports it, so the
    caller pays for neither the import nor the data load."""
    code = (
        "import sys, threading\n"
        "import respan_instrument\n"
        "importers = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'genai_prices':\n"
        "            importers.append(threading.current_thread().name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Watch())\n"
        "respan_instrument.instrument(api_key='k', base_url='http://127.0.0.1:9/api')\n"
        "for thread in threading.enumerate():\n"
        "    if thread.name == 'respan-prices':\n"
        "        thread.join(30)\n"
        "assert 'genai_prices.data' in sys.modules, 'not loaded'\n"
        "assert importers == ['respan-prices'], importers\n"
        "respan_instrument.uninstrument()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env["RESPAN_SPOOL_DIR"] = str(tmp_path)
    env["RESPAN_EXIT_TIMEOUT"] = "0.5"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_warm():
    PriceBook().warm()
    assert "genai_prices.data" in sys.modules


# --- provider_from_base_url -------------------------------------------------------


@pytest.mark.parametrize(
    "url, provider",
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://api.openai.com/v1/", "openai"),
        ("https://my-res.openai.azure.com/openai/deployments/gpt4o", "azure"),
        ("https://my-res.cognitiveservices.azure.com/openai/v1/", "azure"),
        ("https://my-res.services.ai.azure.com/models", "azure"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("https://api.x.ai/v1", "x-ai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.perplexity.ai", "perplexity"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "google"),
        ("https://api.anthropic.com/v1/", "anthropic"),
        ("https://api.cerebras.ai/v1", "cerebras"),
        ("https://api.novita.ai/v3/openai", "novita"),
        ("https://api.moonshot.ai/v1", "moonshotai"),
        ("https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1", "aws"),
        ("https://router.huggingface.co/together/v1", "huggingface_together"),
        ("HTTPS://API.OPENAI.COM:443/v1", "openai"),
        ("api.groq.com/openai/v1", "groq"),
        ("http://localhost:8000/v1", None),
        ("https://router.huggingface.co/v1", None),
        ("https://api.respan.ai/api", None),
        ("https://evil.com/api.openai.com", None),
        ("https://api.openai.com.evil.com/v1", None),
        ("", None),
    ],
)
def test_provider_from_base_url(url, provider):
    assert provider_from_base_url(url) == provider


def test_provider_ids_agree_with_genai_prices():
    """Every id we return is a genai-prices provider, and its own URL pattern agrees where it matches."""
    import re

    snapshot = data_snapshot.get_snapshot()
    ids = {p.id for p in snapshot.providers}
    for row in providers.HOSTS:
        if row.prices is None:
            continue
        assert row.prices in ids, row.prices
        for url in (f"https://{row.host}/v1", f"https://x.{row.host}/v1"):
            assert provider_from_base_url(url) == row.prices
            matched = next((p.id for p in snapshot.providers if re.match(p.api_pattern, url)), None)
            assert matched in (row.prices, None), (url, matched)
    for route in providers.HF_ROUTES:
        assert f"huggingface_{route}" in ids


def test_provider_from_httpx_like_url_object():
    class URL:
        def __str__(self):
            return "https://api.openai.com/v1/"

    assert provider_from_base_url(URL()) == "openai"


# --- validation and RESPAN_PRICES_FILE --------------------------------------------


def test_validate_prices_ok():
    assert validate_prices({"m": {"input": 1, "output": 2.5, "cached_input": 0}}) == {
        "m": {"input": 1.0, "output": 2.5, "cached_input": 0.0}
    }
    assert validate_prices({}) == {}


@pytest.mark.parametrize(
    "prices, fragment",
    [
        ([("m", {})], "must map model ids"),
        ({"": {"input": 1, "output": 1}}, "non-empty strings"),
        ({1: {"input": 1, "output": 1}}, "non-empty strings"),
        ({"m": 1.0}, "must be a mapping"),
        ({"m": {"input": 1}}, "missing output"),
        ({"m": {"input": 1, "output": 1, "cached": 0.5}}, "unknown keys ['cached']"),
        ({"m": {"input": "1", "output": 1}}, "must be a number"),
        ({"m": {"input": True, "output": 1}}, "must be a number"),
        ({"m": {"input": -1, "output": 1}}, "non-negative"),
        ({"m": {"input": float("nan"), "output": 1}}, "finite"),
    ],
)
def test_validate_prices_errors(prices, fragment):
    with pytest.raises(ValueError) as info:
        validate_prices(prices, "prices")
    assert fragment in str(info.value)
    assert str(info.value).startswith("prices")


def test_price_book_validates_overrides():
    with pytest.raises(ValueError, match="prices"):
        PriceBook({"m": {"input": 1}})


def test_load_prices_file(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"ft:gpt-4o-mini": {"input": 0.3, "output": 1.2, "cached_input": 0.15}}))
    assert load_prices_file(str(path)) == {
        "ft:gpt-4o-mini": {"input": 0.3, "output": 1.2, "cached_input": 0.15}
    }


@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ("[1, 2]", "must map model ids"),
        ('{"m": {"input": 1}}', "missing output"),
        ('{"m": {"input": -2, "output": 1}}', "non-negative"),
    ],
)
def test_load_prices_file_errors(tmp_path, content, fragment):
    path = tmp_path / "prices.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as info:
        load_prices_file(str(path))
    message = str(info.value)
    assert "RESPAN_PRICES_FILE" in message and str(path) in message
    assert fragment in message


def test_load_prices_file_directory(tmp_path):
    with pytest.raises(ValueError, match="RESPAN_PRICES_FILE"):
        load_prices_file(str(tmp_path))


# --- per-unit prices ---------------------------------------------------------------


def test_validate_per_unit_only_entries():
    assert validate_prices({"dall-e-3": {"per_image": 0.1}, "tts-1": {"per_1m_characters": 20}}) == {
        "dall-e-3": {"per_image": 0.1},
        "tts-1": {"per_1m_characters": 20.0},
    }
    with pytest.raises(ValueError, match="missing input, output"):
        validate_prices({"m": {}})
    with pytest.raises(ValueError, match="missing input, output"):
        validate_prices({"m": {"cached_input": 1, "per_image": 1}})


def test_unit_cost_override_then_published():
    book = PriceBook(
        {
            "whisper": {"per_audio_minute": 0.5},  # a prefix of whisper-1
            "acme-voice": {"per_1m_characters": 3.0},
            "gpt-4o-mini": {"input": 1.0, "output": 1.0},  # no per-unit keys
        }
    )
    assert book.unit_cost("whisper-1", "audio_minute", 2.0) == approx(1.0)
    assert book.unit_cost("acme-voice-2026-01-31", "1m_characters", 0.5) == approx(1.5)  # dated id
    assert book.unit_cost("ft:acme-voice:org::x", "1m_characters", 1.0) == approx(3.0)  # ft: wrapper
    assert book.unit_cost("tts-1", "1m_characters", 1.0) == approx(15.0)  # published
    assert book.unit_cost("dall-e-2", "image", 2, "256x256") == approx(0.032)
    assert book.unit_cost("gpt-4o-mini", "image", 1) is None
    assert book.unit_cost("acme-voice", "image", 1) is None
    assert book.unit_cost(None, "image", 1) is None  # type: ignore[arg-type]
    # per-unit entries never price tokens
    assert book.cost("whisper-1", TokenUsage(10, 10)) is None
