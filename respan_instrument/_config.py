"""Frozen settings, parsed once from `instrument()` arguments and the environment."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any
from urllib.parse import urlsplit

from ._logger import log_once

# A slow answer is waited for: an abandoned post that the destination still accepts is a
# duplicate once it is retried. The spool's claim on a row (`deliver.spool.LEASE`, 120 s) must
# outlast the longest post, connect and read included, or another process sharing the spool
# could send the same rows meanwhile; hence the cap on what RESPAN_TIMEOUT may ask for.
READ_TIMEOUT = 60.0  # seconds: waiting for the answer (and for each write of the body)
MAX_READ_TIMEOUT = 60.0

DEFAULT_BASE_URL = "https://api.respan.ai/api"
PUBLIC_GATEWAY_URL = DEFAULT_BASE_URL
EXPORTS = ("logs", "otlp")  # request logs to the logging API, or OTLP/HTTP spans
OTLP_PATH = "/v2/traces"  # Respan's OTLP ingest, under the API root

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Settings:
    """Everything the package needs to know, validated."""

    api_key: str | None
    base_url: str
    capture_content: bool
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    spool_dir: str | None = None
    spool_max_mb: int = 1024
    max_content_bytes: int = 1_000_000
    exit_timeout: float = 5.0
    read_timeout: float = READ_TIMEOUT
    defaults: Mapping[str, Any] = field(default_factory=dict)
    export: str = "logs"
    otlp_endpoint: str = DEFAULT_BASE_URL + OTLP_PATH
    agents_exclusive: bool = False  # our processor replaces the Agents SDK's own ones
    redact: Callable[[str], str] | str | None = None  # the user's function, "pii", or None (off)
    sample_rate: float = 1.0  # the fraction of traces whose calls keep their content

    def __repr__(self) -> str:  # never show the key
        return (
            f"Settings(api_key={'set' if self.api_key else None}, base_url={self.base_url!r}, "
            f"capture_content={self.capture_content}, export={self.export!r})"
        )


def parse_bool(value: str, name: str) -> bool:
    """Parse a boolean environment value, or raise ValueError naming the variable."""
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean; use true or false")


def check_url(value: str, name: str) -> str:
    """Return `value` without a trailing slash if it is an http(s) URL, else raise ValueError."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name}={value!r} is not an http(s) URL")
    return value.strip().rstrip("/")


def positive_number(raw: str, name: str, kind: type[int] | type[float]) -> Any:
    """`raw` as a positive int/float, or ValueError naming the variable."""
    try:
        number = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if number <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return number


def read_timeout(raw: str | None) -> float:
    """RESPAN_TIMEOUT: seconds to wait for Respan's answer to a post, or ValueError naming it."""
    if raw is None or not raw.strip():
        return READ_TIMEOUT
    seconds = float(positive_number(raw.strip(), "RESPAN_TIMEOUT", float))
    if seconds != seconds:  # NaN passes the positive check
        raise ValueError(f"RESPAN_TIMEOUT={raw!r} is not a number")
    if seconds > MAX_READ_TIMEOUT:
        raise ValueError(f"RESPAN_TIMEOUT={raw!r} must be at most {MAX_READ_TIMEOUT:g} seconds")
    return seconds


def env_number(name: str, default: float) -> float:
    """A positive number from the environment (the pipeline's test and tuning knobs:
    RESPAN_SCHEDULE_DELAY, RESPAN_RETRY_BASE, RESPAN_RETRY_CAP, RESPAN_BULK_PER_MINUTE),
    or ValueError naming it. Read when a pipeline is built, so tests may set them just before;
    the wiring hands the values down to `deliver/`, with delivery's defaults."""
    raw = os.environ.get(name, "").strip()
    return float(positive_number(raw, name, float)) if raw else default


def spool_dir_env() -> str | None:
    """RESPAN_SPOOL_DIR, when set: the spool directory everything defaults to."""
    return os.environ.get("RESPAN_SPOOL_DIR") or None


def cache_home_env(windows: bool) -> str:
    """Where the OS wants per-user caches, as the environment says ("" when it says nothing):
    LOCALAPPDATA on Windows, XDG_CACHE_HOME elsewhere."""
    return os.environ.get("LOCALAPPDATA" if windows else "XDG_CACHE_HOME", "")


def user_name_env() -> str:
    """USERNAME (Windows has no uid to name a private temp directory by)."""
    return os.environ.get("USERNAME", "user")


def sdk_disabled() -> bool:
    """OTEL_SDK_DISABLED=true turns the whole package off."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def export_mode(argument: str | None, raw: str | None) -> str:
    """`instrument(export=...)` over RESPAN_EXPORT: "logs" (default) or "otlp". An unknown
    value is said once on the logger and the default is used: a typo must not stop the app."""
    value, name = (argument, "export") if argument is not None else (raw, "RESPAN_EXPORT")
    if value is None or not str(value).strip():
        return "logs"
    mode = str(value).strip().lower()
    if mode in EXPORTS:
        return mode
    log_once(
        "bad-export",
        "respan_instrument: %s=%r is not one of %s; exporting request logs",
        name,
        value,
        ", ".join(EXPORTS),
    )
    return "logs"


AGENTS_MODES = ("on", "exclusive")


def agents_exclusive(argument: str | None, raw: str | None) -> bool:
    """`instrument(agents=...)` ("on", the default: the Agents SDK's own trace processors keep
    running beside ours; "exclusive": ours replace them) over RESPAN_AGENTS_EXCLUSIVE (a boolean).
    A bad value is a ValueError naming it."""
    if argument is not None:
        mode = str(argument).strip().lower() if isinstance(argument, str) else argument
        if mode not in AGENTS_MODES:
            raise ValueError(f"agents={argument!r} must be one of {', '.join(map(repr, AGENTS_MODES))}")
        return mode == "exclusive"
    if raw is None or not raw.strip():
        return False
    return parse_bool(raw, "RESPAN_AGENTS_EXCLUSIVE")


def load_settings(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    capture_content: bool | None = None,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    export: str | None = None,
    agents: str | None = None,
    redact: Callable[[str], str] | str | None = None,
    sample_rate: float | None = None,
    unit_price_keys: Iterable[str] | None = None,
) -> Settings:
    """Merge arguments over environment; raise ValueError naming the bad setting.
    `unit_price_keys`: the per-unit price keys the endpoint specs declare (see
    `validate_prices`)."""
    env = os.environ
    key = api_key if api_key is not None else (env.get("RESPAN_API_KEY") or None)
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ValueError("api_key / RESPAN_API_KEY must be a non-empty string")

    if base_url is not None:
        url = check_url(base_url, "base_url")
    else:
        url = check_url(env.get("RESPAN_BASE_URL") or DEFAULT_BASE_URL, "RESPAN_BASE_URL")

    if capture_content is None:
        raw = env.get("RESPAN_CAPTURE_CONTENT")
        capture = True if raw is None or raw == "" else parse_bool(raw, "RESPAN_CAPTURE_CONTENT")
    elif isinstance(capture_content, bool):
        capture = capture_content
    else:
        raise ValueError(f"capture_content={capture_content!r} must be True, False or None")

    merged: dict[str, dict[str, float]] = {}
    prices_file = env.get("RESPAN_PRICES_FILE")
    if prices_file:
        merged.update(load_prices_file(prices_file, unit_price_keys))
    if prices is not None:
        merged.update(validate_prices(prices, "prices", unit_price_keys))

    spool_max = env.get("RESPAN_SPOOL_MAX_MB")
    max_bytes = env.get("RESPAN_MAX_CONTENT_BYTES")
    exit_timeout = env.get("RESPAN_EXIT_TIMEOUT")
    return Settings(
        api_key=key.strip() if key else None,
        base_url=url,
        capture_content=capture,
        prices=merged,
        spool_dir=env.get("RESPAN_SPOOL_DIR") or None,
        spool_max_mb=positive_number(spool_max, "RESPAN_SPOOL_MAX_MB", int) if spool_max else 1024,
        max_content_bytes=(
            positive_number(max_bytes, "RESPAN_MAX_CONTENT_BYTES", int) if max_bytes else 1_000_000
        ),
        exit_timeout=(positive_number(exit_timeout, "RESPAN_EXIT_TIMEOUT", float) if exit_timeout else 5.0),
        read_timeout=read_timeout(env.get("RESPAN_TIMEOUT")),
        defaults=dict(defaults or {}),
        export=export_mode(export, env.get("RESPAN_EXPORT")),
        otlp_endpoint=(
            check_url(env["RESPAN_OTLP_ENDPOINT"], "RESPAN_OTLP_ENDPOINT")
            if env.get("RESPAN_OTLP_ENDPOINT")
            else url + OTLP_PATH
        ),
        agents_exclusive=agents_exclusive(agents, env.get("RESPAN_AGENTS_EXCLUSIVE")),
        redact=redaction(redact, env.get("RESPAN_REDACT")),
        sample_rate=content_sample_rate(sample_rate, env.get("RESPAN_SAMPLE_RATE")),
    )


# ---- privacy (`redact=` / RESPAN_REDACT, `sample_rate=` / RESPAN_SAMPLE_RATE) -------------------

REDACT_MODES = ("pii", "off")


def redaction(
    argument: Callable[[str], str] | str | None, raw: str | None
) -> Callable[[str], str] | str | None:
    """`instrument(redact=...)` over RESPAN_REDACT: a function of one string, "pii" (the built-in
    patterns) or None (off, the default); anything else a ValueError naming the setting."""
    if argument is not None and not isinstance(argument, str):
        if not callable(argument):
            raise ValueError(f"redact={argument!r} must be a function of one string, 'pii' or 'off'")
        return argument
    value, name = (argument, "redact") if argument is not None else (raw, "RESPAN_REDACT")
    if value is None or not value.strip():
        return None
    mode = value.strip().lower()
    if mode not in REDACT_MODES:
        raise ValueError(
            f"{name}={value!r} is not one of {', '.join(REDACT_MODES)} (or, as an argument, a function)"
        )
    return "pii" if mode == "pii" else None


def content_sample_rate(argument: Any, raw: str | None) -> float:
    """`instrument(sample_rate=...)` over RESPAN_SAMPLE_RATE: a number from 0 to 1 (default 1),
    else a ValueError naming the setting."""
    if argument is not None:
        value, name = argument, "sample_rate"
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"sample_rate={value!r} must be a number from 0 to 1")
        rate = float(value)
    else:
        if raw is None or not raw.strip():
            return 1.0
        name = "RESPAN_SAMPLE_RATE"
        try:
            rate = float(raw.strip())
        except ValueError:
            raise ValueError(f"RESPAN_SAMPLE_RATE={raw!r} is not a number") from None
        value = raw
    if not 0.0 <= rate <= 1.0:  # (NaN fails both comparisons)
        raise ValueError(f"{name}={value!r} must be a number from 0 to 1")
    return rate


# ---- user prices (`prices=` / RESPAN_PRICES_FILE) ---------------------------------------------

TOKEN_PRICE_KEYS = ("input", "output", "cached_input", "cache_write")  # USD per 1M tokens
_REQUIRED_TOKEN_KEYS = ("input", "output")


def validate_prices(
    prices: Any, source: str = "prices", unit_keys: Iterable[str] | None = None
) -> dict[str, dict[str, float]]:
    """Check `{model: {"input": usd_per_1m, "output": ..., "cached_input": ..., "per_image": ...}}`.

    Token prices need `input` and `output` (`cached_input` and `cache_write` are optional: those
    tokens then cost the input rate). An entry may instead hold only per-unit prices for models
    not billed by the token: `unit_keys` are those the endpoint specs declare (`per_image`,
    `per_audio_minute`, `per_1m_characters`, `per_web_search_call`, ...; see
    `endpoints.price_units`), given by the caller; None accepts any `per_` key. Returns a plain
    copy with float rates; raises ValueError naming `source` otherwise.
    """
    known = tuple(unit_keys) if unit_keys is not None else None
    allowed = (*TOKEN_PRICE_KEYS, *(known if known is not None else ("per_...",)))
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
        unknown = [key for key in rates if key not in TOKEN_PRICE_KEYS and not _unit_key(key, known)]
        if unknown:
            raise ValueError(
                f"{source}[{model!r}] has unknown keys {sorted(map(str, unknown))}; "
                f"allowed: {', '.join(allowed)}"
            )
        per_unit_only = not any(key in rates for key in TOKEN_PRICE_KEYS) and any(
            _unit_key(key, known) for key in rates
        )
        missing = [key for key in _REQUIRED_TOKEN_KEYS if key not in rates]
        if missing and not per_unit_only:
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


def _unit_key(key: Any, known: tuple[str, ...] | None) -> bool:
    return key in known if known is not None else isinstance(key, str) and key.startswith("per_")


def load_prices_file(path: str, unit_keys: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """Read and validate a RESPAN_PRICES_FILE (JSON); raise ValueError naming it on any problem."""
    name = f"RESPAN_PRICES_FILE={path!r}"
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{name}: not valid JSON: {exc}") from None
    return validate_prices(data, name, unit_keys)


# ---- variables read where they are used (each through one function here) -----------------------


def strict_env() -> bool:
    """RESPAN_INSTRUMENT_STRICT=1 (our own test suite): internal errors re-raise and are counted.
    Read on every ask, so a test may turn it off for itself."""
    return os.environ.get("RESPAN_INSTRUMENT_STRICT") == "1"


def api_key_env() -> str | None:
    """RESPAN_API_KEY, when set and not empty."""
    return os.environ.get("RESPAN_API_KEY") or None


def base_url_env() -> str | None:
    """RESPAN_BASE_URL, when set and not empty."""
    return os.environ.get("RESPAN_BASE_URL") or None


def tracer_provider_env() -> bool:
    """OTEL_PYTHON_TRACER_PROVIDER is set: the API loads the provider it names, so the API must
    be asked for the global provider rather than its global read directly."""
    return "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def meter_provider_env() -> bool:
    """OTEL_PYTHON_METER_PROVIDER is set (as `tracer_provider_env`, for metrics)."""
    return "OTEL_PYTHON_METER_PROVIDER" in os.environ
