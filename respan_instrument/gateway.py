"""Clients for Respan's OpenAI-compatible gateway, with per-request provider credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._config import DEFAULT_BASE_URL, api_key_env, base_url_env, check_url
from ._context import CREDENTIALS, _check_credentials
from .capture.gateway_client import client_class

# Respan parameters the gateway reads from the top level of the request body
GATEWAY_PARAMETERS = frozenset(
    {"fallback_models", "load_balance_group", "disable_log", "prompt", "cache_enabled"}
)


def gateway_body(credentials: Mapping[str, Any] | None = None, **parameters: Any) -> dict[str, Any]:
    """Validated top-level body fields for gateway requests."""
    body: dict[str, Any] = {}
    if credentials is not None:
        body[CREDENTIALS] = _normalise_credentials(credentials)
    for key, value in parameters.items():
        if key not in GATEWAY_PARAMETERS:
            raise TypeError(f"unknown gateway parameter {key!r}; allowed: {sorted(GATEWAY_PARAMETERS)}")
        if value is None:
            continue
        if key == "fallback_models" and not (
            isinstance(value, (list, tuple)) and all(isinstance(m, str) and m for m in value)
        ):
            raise TypeError("fallback_models must be a list of model names")
        if key in ("disable_log", "cache_enabled") and not isinstance(value, bool):
            raise TypeError(f"{key} must be True or False")
        if key == "load_balance_group" and not isinstance(value, (str, Mapping)):
            raise TypeError("load_balance_group must be a group id or a dict")
        if key == "prompt" and not isinstance(value, Mapping):
            raise TypeError("prompt must be a dict like {'prompt_id': ..., 'variables': {...}}")
        body[key] = list(value) if key == "fallback_models" else value
    return body


def _normalise_credentials(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """Accept `{"openai": {"api_key": k}}` or `{"openai": [{"weight": w, "credentials": {...}}]}`,
    or the shorthand `{"openai": "sk-..."}`."""
    out: dict[str, Any] = {}
    for provider, value in dict(credentials).items():
        out[provider] = {"api_key": value} if isinstance(value, str) else value
    _check_credentials(out, "credentials")
    return out


def _settings(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    key = api_key or api_key_env()
    if not key:
        raise ValueError("gateway_client() needs api_key= or RESPAN_API_KEY")
    url = check_url(base_url or base_url_env() or DEFAULT_BASE_URL, "base_url")
    return key, url


def _make(
    is_async: bool, api_key: str | None, base_url: str | None, credentials: Any, kwargs: dict[str, Any]
) -> Any:
    key, url = _settings(api_key, base_url)
    parameters = {k: kwargs.pop(k) for k in list(kwargs) if k in GATEWAY_PARAMETERS}
    body = gateway_body(credentials, **parameters)
    client = client_class(is_async)(api_key=key, base_url=url, **kwargs)
    client._respan_body = body or None
    return client


def gateway_client(
    api_key: str | None = None,
    base_url: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """An `openai.OpenAI` client pointed at Respan's gateway.

    Args:
        api_key: Respan API key (default `RESPAN_API_KEY`).
        base_url: gateway root (default `RESPAN_BASE_URL`, else https://api.respan.ai/api).
        credentials: provider keys for every request, `{"openai": {"api_key": "sk-..."}}` or a
            weighted list `{"openai": [{"weight": 1, "credentials": {"api_key": "k1"}}, ...]}`.
            They are sent to the gateway only, never recorded.
        **kwargs: gateway parameters sent with every request (`fallback_models`,
            `load_balance_group`, `disable_log`, `cache_enabled`, `prompt`); everything else goes
            to `openai.OpenAI` (timeout, max_retries, http_client, ...).

    Raises:
        ValueError: no Respan key, or a bad base URL. TypeError/ValueError: bad credentials or
            gateway parameters.
    """
    return _make(False, api_key, base_url, credentials, kwargs)


def async_gateway_client(
    api_key: str | None = None,
    base_url: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """The `openai.AsyncOpenAI` twin of `gateway_client()` (same arguments)."""
    return _make(True, api_key, base_url, credentials, kwargs)
