"""One module per OpenAI endpoint, each a spec of what a call to it means; the registry below
maps the SDK's request path to it. Adding an endpoint is a module here and a line in `ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import Endpoint
from .chat import CHAT
from .completions import COMPLETIONS
from .embeddings import EMBEDDINGS
from .responses import RESPONSES

# FinalRequestOptions.url (before Azure rewrites it) -> the endpoint it calls
ENDPOINTS: Mapping[str, Endpoint] = {spec.path: spec for spec in (CHAT, RESPONSES, EMBEDDINGS, COMPLETIONS)}

__all__ = ["CHAT", "COMPLETIONS", "EMBEDDINGS", "ENDPOINTS", "RESPONSES", "Endpoint"]
