"""The stub's routing table: which endpoint answers which method, and with which builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ._multipart import FormData
from ._stub_audio import speech_reply, transcription_reply
from ._stub_background import BackgroundResponses
from ._stub_chat import chat_completion, chat_completion_stream
from ._stub_common import JSON, CallSpec, Reply, SSEvent, resolve_model
from ._stub_completions import completion, completion_stream
from ._stub_embeddings import embeddings
from ._stub_files import FileStore
from ._stub_images import image_reply
from ._stub_moderations import moderation_reply
from ._stub_responses import response_object, response_stream

__all__ = ["MODELS", "MULTIPART", "Routes"]

_BUILDERS: dict[str, Callable[[CallSpec], JSON]] = {
    "chat/completions": chat_completion,
    "responses": response_object,
    "completions": completion,
    "embeddings": embeddings,
}
_STREAMERS: dict[str, Callable[[CallSpec], Iterator[SSEvent]]] = {
    "chat/completions": chat_completion_stream,
    "responses": response_stream,
    "completions": completion_stream,
}
#: Endpoints whose requests are multipart/form-data uploads rather than JSON.
MULTIPART = frozenset(
    {"images/edits", "images/variations", "audio/transcriptions", "audio/translations", "files"}
)
_POST = frozenset({*_BUILDERS, *MULTIPART, "images/generations", "audio/speech", "moderations", "batches"})
MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "gpt-3.5-turbo-instruct")


def _batch_answer(endpoint: str, body: JSON) -> JSON | None:
    builder = _BUILDERS.get(endpoint)
    model = resolve_model(str(body.get("model") or ""))
    return None if builder is None else builder(CallSpec(body=body, model=model))


class Routes:
    """Answers per endpoint; the stores keep state (background responses, files, batches) per stub."""

    def __init__(self) -> None:
        self.background = BackgroundResponses()
        self.files = FileStore(_batch_answer)

    @staticmethod
    def accepts_post(endpoint: str) -> bool:
        """Whether ``POST <endpoint>`` exists (``responses/{id}/cancel`` included)."""
        parts = endpoint.split("/")
        return endpoint in _POST or (len(parts) == 3 and parts[0] == "responses" and parts[2] == "cancel")

    def post(self, endpoint: str, spec: CallSpec, headers: Mapping[str, str], form: FormData) -> Reply | None:
        """The answer to ``POST <endpoint>``, or None when the object it names does not exist."""
        body = spec.body
        kind = endpoint.rpartition("/")[2]
        if endpoint.startswith("responses/"):
            return self.background.cancel(endpoint.split("/")[1])
        if endpoint == "responses" and body.get("background") is True:
            return self.background.create(spec, headers)
        if body.get("stream") is True and endpoint in _STREAMERS:
            return Reply(events=_STREAMERS[endpoint](spec))
        if endpoint in _BUILDERS:
            return Reply(json=_BUILDERS[endpoint](spec))
        if endpoint.startswith("images/"):
            return image_reply(kind, spec)
        if endpoint == "audio/speech":
            return speech_reply(spec, headers)
        if endpoint.startswith("audio/"):
            return transcription_reply(kind, spec)
        if endpoint == "moderations":
            return moderation_reply(spec)
        if endpoint == "files":
            name = form.files.get("file", ("upload.jsonl", "", 0))[0]
            return self.files.upload(form.fields, name, form.contents.get("file", b""))
        return self.files.create_batch(body)

    def get(self, endpoint: str, query: Mapping[str, str]) -> Reply | None:
        """The answer to ``GET <endpoint>``, or None for an unknown route or id."""
        parts = endpoint.split("/")
        if endpoint == "models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "respan-stub"} for m in MODELS]
            return Reply(json={"object": "list", "data": data})
        if len(parts) == 2 and parts[0] == "responses":
            return self.background.retrieve(parts[1], query)
        if len(parts) == 2 and parts[0] == "files":
            return self.files.file(parts[1])
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            return self.files.content(parts[1])
        if len(parts) == 2 and parts[0] == "batches":
            return self.files.batch(parts[1])
        return None
