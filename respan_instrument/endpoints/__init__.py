"""One module per OpenAI endpoint, each a spec of what a call to it means; the registry below
is derived from the specs: every `Endpoint` instance a module in `_MODULES` defines is routed by
the URL patterns and methods it declares. A new spec in an existing module needs nothing here; a
new module, its name in `_MODULES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import ModuleType

from . import (
    agents,
    audio,
    batch,
    chat,
    completions,
    decisions,
    embeddings,
    images,
    moderations,
    responses,
    speech,
)
from .base import Endpoint
from .chat import CHAT
from .completions import COMPLETIONS
from .embeddings import EMBEDDINGS
from .responses import RESPONSES

_MODULES: tuple[ModuleType, ...] = (
    chat,
    responses,
    embeddings,
    completions,
    images,
    audio,
    speech,
    moderations,
    decisions,
    batch,
    agents,
)

# every spec with an HTTP route, in the order of `_MODULES` and their definitions
SPECS: tuple[Endpoint, ...] = tuple(
    {
        id(value): value
        for module in _MODULES
        for value in vars(module).values()
        if isinstance(value, Endpoint) and value.routes
    }.values()
)


_Patterns = dict[tuple[str, bool], tuple[tuple[re.Pattern[str], Endpoint], ...]]


def _compile() -> tuple[dict[str, Endpoint], _Patterns]:
    exact: dict[str, Endpoint] = {}
    patterns: dict[tuple[str, bool], list[tuple[re.Pattern[str], Endpoint]]] = {}
    claimed: dict[tuple[str, str], Endpoint] = {}
    for spec in SPECS:
        for route in spec.routes:
            for method in spec.methods:
                other = claimed.setdefault((route, method), spec)
                if other is not spec:
                    raise ValueError(f"{method.upper()} {route} is claimed by {other!r} and {spec!r}")
            if "{" not in route:
                if route in exact:  # one spec per exact URL: the hot path checks one method set
                    raise ValueError(f"{route} is claimed by {exact[route]!r} and {spec!r}")
                exact[route] = spec
                continue
            # `{id}` is one path segment; everything else, a query string included, is literal
            pieces = re.split(r"\{[a-z_]+\}", route)
            regex = "([^/?]+)".join(re.escape(piece) for piece in pieces)
            key = (_head(route), "?" in route)
            patterns.setdefault(key, []).append((re.compile(regex), spec))
    return exact, {key: tuple(found) for key, found in patterns.items()}


def _head(url: str) -> str:
    """The first path segment: patterns are looked up by it (and by whether they hold a query)."""
    return url[1:].partition("/")[0].partition("?")[0]


# FinalRequestOptions.url (before Azure rewrites it) -> the spec, for URLs that name no object:
# the hot path, one dict lookup (the caller checks the HTTP method against `spec.methods`).
ENDPOINTS: Mapping[str, Endpoint]
ENDPOINTS, _PATTERNS = _compile()


def routed(url: str, method: str) -> tuple[Endpoint, str | None] | None:
    """The spec a request to `url` with `method` (lower case) calls, and the object id its URL
    names (None for a URL that names none); None for every other call, which passes through
    untouched. A query string the specs do not know never hides a known path: the URL is tried
    again without it."""
    spec = ENDPOINTS.get(url)
    if spec is not None:
        return (spec, None) if method in spec.methods else None
    query = "?" in url
    for pattern, spec in _PATTERNS.get((_head(url), query), ()):
        match = pattern.fullmatch(url)
        if match is not None and method in spec.methods:
            return spec, match.group(1)
    return routed(url.partition("?")[0], method) if query else None


# a Batch result's body `object` -> the endpoint that answered it
BY_OBJECT: Mapping[str, Endpoint] = {
    "chat.completion": CHAT,
    "response": RESPONSES,
    "text_completion": COMPLETIONS,
    "list": EMBEDDINGS,
}

__all__ = [
    "BY_OBJECT",
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "ENDPOINTS",
    "RESPONSES",
    "SPECS",
    "Endpoint",
    "routed",
]
