"""The stub's routing table: one `Route` per method and URL pattern (spelled as the endpoint
specs spell theirs, `{id}` for one path segment, without the `/v1/` prefix or query string),
each with the function that answers it. Adding an endpoint to the stub is its answer and a line
in `ROUTES`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from ._multipart import FormData
from ._stub_audio import speech_reply, transcription_reply
from ._stub_background import BackgroundResponses
from ._stub_chat import chat_completion, chat_completion_stream
from ._stub_common import JSON, CallSpec, Reply, SSEvent, resolve_model
from ._stub_completions import completion, completion_stream
from ._stub_decisions import decision_reply
from ._stub_embeddings import embeddings
from ._stub_files import FileStore
from ._stub_images import image_reply
from ._stub_moderations import moderation_reply
from ._stub_responses import compacted_reply, response_object, response_stream

__all__ = ["MODELS", "MULTIPART", "ROUTES", "Ask", "Route", "Routes"]

#: Endpoints whose requests are multipart/form-data uploads rather than JSON.
MULTIPART = frozenset(
    {"images/edits", "images/variations", "audio/transcriptions", "audio/translations", "files"}
)
MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "gpt-3.5-turbo-instruct")


class Ask(NamedTuple):
    """One request, as a route's answer needs it."""

    id: str  # what the route's `{id}` matched ("" for none)
    spec: CallSpec  # the JSON body (a multipart request's fields) and the stub's settings
    query: Mapping[str, str]
    headers: Mapping[str, str]
    form: FormData


class Route(NamedTuple):
    method: str
    pattern: str
    answer: Callable[[Routes, Ask], Reply | None]  # None: the object the URL names does not exist


def _json_or_stream(
    build: Callable[[CallSpec], JSON], stream: Callable[[CallSpec], Iterator[SSEvent]] | None = None
) -> Callable[[Routes, Ask], Reply]:
    def answer(routes: Routes, ask: Ask) -> Reply:
        if stream is not None and ask.spec.body.get("stream") is True:
            return Reply(events=stream(ask.spec))
        return Reply(json=build(ask.spec))

    return answer


def _responses(routes: Routes, ask: Ask) -> Reply:
    if ask.spec.body.get("background") is True:
        return routes.background.create(ask.spec, ask.headers)
    return _json_or_stream(response_object, response_stream)(routes, ask)


def _models(routes: Routes, ask: Ask) -> Reply:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "respan-stub"} for m in MODELS]
    return Reply(json={"object": "list", "data": data})


def _upload(routes: Routes, ask: Ask) -> Reply:
    name = ask.form.files.get("file", ("upload.jsonl", "", 0))[0]
    return routes.files.upload(ask.form.fields, name, ask.form.contents.get("file", b""))


ROUTES: tuple[Route, ...] = (
    Route("POST", "chat/completions", _json_or_stream(chat_completion, chat_completion_stream)),
    Route("POST", "completions", _json_or_stream(completion, completion_stream)),
    Route("POST", "embeddings", _json_or_stream(embeddings)),
    Route("POST", "responses", _responses),
    Route("POST", "responses/compact", lambda routes, ask: compacted_reply(ask.spec)),
    Route("GET", "responses/{id}", lambda routes, ask: routes.background.retrieve(ask.id, ask.query)),
    Route("POST", "responses/{id}/cancel", lambda routes, ask: routes.background.cancel(ask.id)),
    Route("POST", "decisions", lambda routes, ask: decision_reply(ask.spec)),
    Route("POST", "images/generations", lambda routes, ask: image_reply("generations", ask.spec)),
    Route("POST", "images/edits", lambda routes, ask: image_reply("edits", ask.spec)),
    Route("POST", "images/variations", lambda routes, ask: image_reply("variations", ask.spec)),
    Route(
        "POST", "audio/transcriptions", lambda routes, ask: transcription_reply("transcriptions", ask.spec)
    ),
    Route("POST", "audio/translations", lambda routes, ask: transcription_reply("translations", ask.spec)),
    Route("POST", "audio/speech", lambda routes, ask: speech_reply(ask.spec, ask.headers)),
    Route("POST", "moderations", lambda routes, ask: moderation_reply(ask.spec)),
    Route("POST", "files", _upload),
    Route("GET", "files/{id}", lambda routes, ask: routes.files.file(ask.id)),
    Route("GET", "files/{id}/content", lambda routes, ask: routes.files.content(ask.id)),
    Route("POST", "batches", lambda routes, ask: routes.files.create_batch(ask.spec.body)),
    Route("GET", "batches/{id}", lambda routes, ask: routes.files.batch(ask.id)),
    Route("GET", "models", _models),
)


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile("([^/]+)".join(re.escape(piece) for piece in pattern.split("{id}")))


_TABLE = tuple((route, _compile(route.pattern)) for route in ROUTES)


def _find(method: str, endpoint: str) -> tuple[Route, str] | None:
    for route, pattern in _TABLE:
        if route.method == method:
            match = pattern.fullmatch(endpoint)
            if match is not None:
                return route, match.group(1) if match.groups() else ""
    return None


def _batch_answer(endpoint: str, body: JSON) -> JSON | None:
    """What a Batch API line asking `endpoint` is answered (the JSON answers only)."""
    builder = {
        "chat/completions": chat_completion,
        "responses": response_object,
        "completions": completion,
        "embeddings": embeddings,
    }.get(endpoint)
    model = resolve_model(str(body.get("model") or ""))
    return None if builder is None else builder(CallSpec(body=body, model=model))


class Routes:
    """Answers per endpoint; the stores keep state (background responses, files, batches) per stub."""

    def __init__(self) -> None:
        self.background: BackgroundResponses = BackgroundResponses()
        self.files: FileStore = FileStore(_batch_answer)

    @staticmethod
    def accepts_post(endpoint: str) -> bool:
        """Whether ``POST <endpoint>`` exists."""
        return _find("POST", endpoint) is not None

    def post(self, endpoint: str, spec: CallSpec, headers: Mapping[str, str], form: FormData) -> Reply | None:
        """The answer to ``POST <endpoint>``, or None when the object it names does not exist."""
        found = _find("POST", endpoint)
        if found is None:
            return None
        route, object_id = found
        return route.answer(self, Ask(object_id, spec, {}, headers, form))

    def get(self, endpoint: str, query: Mapping[str, str]) -> Reply | None:
        """The answer to ``GET <endpoint>``, or None for an unknown route or id."""
        found = _find("GET", endpoint)
        if found is None:
            return None
        route, object_id = found
        return route.answer(self, Ask(object_id, CallSpec(body={}, model=""), query, {}, FormData()))
