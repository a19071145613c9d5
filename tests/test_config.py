"""Bad settings fail at instrument() with a ValueError naming the variable."""

from __future__ import annotations

import json

import pytest

import respan_instrument


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("RESPAN_BASE_URL", "not a url"),
        ("RESPAN_BASE_URL", "ftp://x"),
        ("RESPAN_CAPTURE_CONTENT", "maybe"),
        ("RESPAN_PRICES_FILE", "/nonexistent/prices.json"),
        ("RESPAN_SPOOL_MAX_MB", "lots"),
        ("RESPAN_MAX_CONTENT_BYTES", "-5"),
    ],
)
def test_bad_environment(monkeypatch, var, value) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=var):
        respan_instrument.instrument(api_key="k")
    respan_instrument.uninstrument()


def test_bad_prices_file_content(monkeypatch, tmp_path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"m": {"input": "cheap"}}))
    monkeypatch.setenv("RESPAN_PRICES_FILE", str(path))
    with pytest.raises(ValueError, match="RESPAN_PRICES_FILE"):
        respan_instrument.instrument(api_key="k")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base_url"):
        respan_instrument.instrument(api_key="k", base_url="nope")
    with pytest.raises(ValueError, match="capture_content"):
        respan_instrument.instrument(api_key="k", capture_content="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prices"):
        respan_instrument.instrument(api_key="k", prices={"m": {"input": -1}})


def test_prices_override_used(instrumented, client, collector, tmp_path) -> None:
    respan_instrument.instrument(
        api_key="rk-test-respan-key-123",
        base_url=collector.url + "/api",
        prices={"gpt-4o-mini": {"input": 1.0, "output": 2.0}},
    )
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    assert respan_instrument.flush(5)
    (log,) = collector.logs
    usage = response.usage
    assert log["cost"] == pytest.approx(usage.prompt_tokens * 1e-6 + usage.completion_tokens * 2e-6)
