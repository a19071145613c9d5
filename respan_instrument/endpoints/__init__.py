"""One module per OpenAI endpoint, each a spec of what a call to it means; the registry below
maps the SDK's request path to it. Adding an endpoint is a module here and a line in `ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import agents
from .audio import TRANSCRIPTIONS, TRANSLATIONS
from .base import Endpoint
from .batch import BATCH_OUTPUT
from .chat import CHAT
from .completions import COMPLETIONS
from .embeddings import EMBEDDINGS
from .images import IMAGE_EDITS, IMAGE_VARIATIONS, IMAGES
from .moderations import MODERATIONS
from .responses import CANCELLED_RESPONSE, RESPONSES, RETRIEVED_RESPONSE
from .speech import SPEECH

# FinalRequestOptions.url (before Azure rewrites it) of a POST -> the endpoint it calls
ENDPOINTS: Mapping[str, Endpoint] = {
    spec.path: spec
    for spec in (
        CHAT,
        RESPONSES,
        EMBEDDINGS,
        COMPLETIONS,
        IMAGES,
        IMAGE_EDITS,
        IMAGE_VARIATIONS,
        TRANSCRIPTIONS,
        TRANSLATIONS,
        SPEECH,
        MODERATIONS,
        agents.AGENT_SESSIONS,
    )
}


def routed(url: str, method: str) -> tuple[Endpoint, str] | None:
    """Endpoints whose URL names an object (`/responses/{id}`, `/files/{id}/content`), with
    that id; None for every other call, which passes through untouched. Only reached when the
    URL is not one of `ENDPOINTS`: a few string checks."""
    if url.startswith("/responses/"):
        rest = url[len("/responses/") :]
        if "/" not in rest:
            return (RETRIEVED_RESPONSE, rest) if method == "get" and rest else None
        object_id, _, action = rest.partition("/")
        return (CANCELLED_RESPONSE, object_id) if action == "cancel" and method == "post" else None
    if url.startswith("/agents/sessions/"):
        return agents.route(url, method)
    if url.startswith("/files/") and url.endswith("/content") and method == "get":
        object_id = url[len("/files/") : -len("/content")]
        return (BATCH_OUTPUT, object_id) if object_id and "/" not in object_id else None
    return None


# a Batch result's body `object` -> the endpoint that answered it
BY_OBJECT: Mapping[str, Endpoint] = {
    "chat.completion": CHAT,
    "response": RESPONSES,
    "text_completion": COMPLETIONS,
    "list": EMBEDDINGS,
}

__all__ = ["BY_OBJECT", "CHAT", "COMPLETIONS", "EMBEDDINGS", "ENDPOINTS", "RESPONSES", "Endpoint", "routed"]
