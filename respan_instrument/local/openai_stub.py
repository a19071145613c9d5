"""OpenAIStub: a deterministic OpenAI-compatible loopback server (OpenAI and Azure paths)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._http import JSONHandler, LoopbackServer
from ._multipart import FormData, parse_form
from ._stub_common import JSON, USAGE_KEYS, CallSpec, Reply, SSEvent, encode_sse, new_id, resolve_model
from ._stub_routes import MULTIPART, Routes

__all__ = ["OpenAIStub", "StubRequest"]

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (injected by the stub)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (injected by the stub)."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ERROR_MODEL = re.compile(r"error-(\d{3})")
_SLOW_MODEL = re.compile(r"slow-(\d+)")
_STREAM_FAIL_AFTER = 3
_MAX_CHUNKS = 100_000


@dataclass(frozen=True)
class StubRequest:
    """One request received by the stub (header names lower-cased).

    ``body`` is the parsed JSON (None if unparsable), or for a multipart upload its non-file form
    fields as strings; ``files`` maps each uploaded field to (filename, content type, size in
    bytes) - the bytes themselves are never kept, so recording a request stays cheap.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, int]] = field(default_factory=dict)


def _route(path: str) -> tuple[str | None, str | None]:
    """Map ``/v1/<endpoint>`` and Azure ``/openai/[deployments/<d>/|v1/]<endpoint>`` to (endpoint, deployment)."""
    parts = [p for p in path.split("/") if p]
    deployment: str | None = None
    if parts[:1] in (["v1"], ["gateway"]):  # /gateway/... plays Respan's gateway
        rest = parts[1:]
    elif parts[:1] == ["openai"]:
        rest = parts[1:]
        if rest[:1] == ["deployments"] and len(rest) >= 2:
            deployment, rest = rest[1], rest[2:]
        elif rest[:1] == ["v1"]:
            rest = rest[1:]
    else:
        return None, None
    return ("/".join(rest) or None), deployment


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


class _StubHandler(JSONHandler):
    stub: OpenAIStub

    def _headers_out(self) -> dict[str, str]:
        headers = {"x-request-id": new_id("req_"), "openai-processing-ms": "1"}
        if self.path.startswith("/gateway/"):
            headers["x-respan-log-id"] = new_id("log_")
        return headers

    def _error(self, status: int, model: str = "", message: str | None = None) -> None:
        kind, code, default = _ERRORS.get(status, ("api_error", None, f"Injected HTTP {status} error."))
        body = {
            "error": {
                "message": message or default.format(model=model),
                "type": kind,
                "param": None,
                "code": code,
            }
        }
        headers = self._headers_out()
        if status == 429:
            headers["retry-after"] = "0"
        self.send_json(status, body, headers)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        headers = self.headers_dict()
        self.stub._record(StubRequest("GET", url.path, headers, None, query))
        endpoint, _ = _route(url.path)
        reply = self.stub._routes.get(endpoint, query) if endpoint else None
        if reply is None:
            self._error(404, message=f"Invalid URL (GET {url.path})")
            return
        forced = _int_header(headers, "x-stub-status")
        if forced is not None and forced >= 400:
            self._error(forced)
            return
        self._send(reply, False, self._delay(headers))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        raw = self.read_body()
        headers = self.headers_dict()
        endpoint, deployment = _route(url.path)
        form = FormData()
        body: Any
        if endpoint in MULTIPART:
            form = parse_form(headers.get("content-type", ""), raw)
            body = dict(form.fields)
        else:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
        query = dict(parse_qsl(url.query))
        self.stub._record(StubRequest("POST", url.path, headers, body, query, dict(form.files)))
        if endpoint is None or not self.stub._routes.accepts_post(endpoint):
            self._error(404, message=f"Invalid URL (POST {url.path})")
            return
        if not isinstance(body, dict):
            self._error(400, message="We could not parse the JSON body of your request.")
            return
        if not self.stub._authorized(headers):
            self._error(401)
            return
        model = str(body.get("model") or deployment or "")
        self._answer(endpoint, body, model, headers, form)

    def _delay(self, headers: Mapping[str, str]) -> float:
        delay_ms = _int_header(headers, "x-stub-chunk-delay-ms")
        return delay_ms / 1000.0 if delay_ms is not None else self.stub.chunk_delay

    def _answer(
        self, endpoint: str, body: JSON, model: str, headers: Mapping[str, str], form: FormData
    ) -> None:
        slow = _SLOW_MODEL.fullmatch(model)
        if slow:
            time.sleep(int(slow.group(1)) / 1000.0)
        forced = _int_header(headers, "x-stub-status")
        injected = _ERROR_MODEL.fullmatch(model)
        status = (
            forced if forced is not None and forced >= 400 else (int(injected.group(1)) if injected else 0)
        )
        if status >= 400:
            self._error(status, model)
            return
        scripted = self.stub._scripted_answer(endpoint)
        if scripted is not None:
            self._send(scripted, False, 0.0)
            return
        chunks = _int_header(headers, "x-stub-chunks") or self.stub.stream_chunks
        chunks = min(max(1, chunks), _MAX_CHUNKS)
        fail = model == "stream-fail"
        if fail:
            chunks = max(chunks, _STREAM_FAIL_AFTER + 1)
        usage = dict(self.stub.usage or {})
        spec = CallSpec(
            body=body, model=resolve_model(model), reply=self.stub.reply, usage=usage, chunks=chunks
        )
        reply = self.stub._routes.post(endpoint, spec, headers, form)
        if reply is None:
            self._error(404, message=f"No such object (POST {self.path})")
            return
        self._send(reply, fail, self._delay(headers))

    def _send(self, reply: Reply, fail: bool, delay: float) -> None:
        if reply.events is not None:
            self._stream(reply.events, fail, delay)
        elif reply.raw is not None:
            self.send_bytes(reply.status, reply.raw, reply.content_type, self._headers_out())
        else:
            self.send_json(reply.status, reply.json, self._headers_out())

    def _stream(self, events: Iterator[SSEvent], fail: bool, delay: float) -> None:
        self.start_chunked(200, "text/event-stream; charset=utf-8", self._headers_out())
        sent = 0
        try:
            for event in events:
                self.write_chunk(encode_sse(event))
                if event.content:
                    sent += 1
                    if fail and sent >= _STREAM_FAIL_AFTER:
                        self.abort()
                        return
                    if delay > 0:
                        time.sleep(delay)
            self.end_chunked()
        except OSError:
            self.close_connection = True


class OpenAIStub(LoopbackServer):
    """Deterministic OpenAI-compatible server on 127.0.0.1; point a client at ``stub.base_url``.

    ``reply`` overrides the generated text (default ``"Echo: <last user message>"``);
    ``usage`` overrides token counts (keys: prompt_tokens/input_tokens, completion_tokens/
    output_tokens, total_tokens, cached_tokens, reasoning_tokens, cache_write_tokens); ``stream_chunks`` is the
    number of content pieces per streamed answer (header ``x-stub-chunks`` overrides per
    request); ``chunk_delay`` sleeps between content pieces (header ``x-stub-chunk-delay-ms``);
    ``api_key`` when set makes other keys fail with 401.

    Routes (``/v1/...``, ``/gateway/...`` and Azure ``/openai/deployments/<d>/...``; the table is
    ``_stub_routes.ROUTES``, a query string such as ``?beta=true`` is ignored): chat/completions,
    completions, embeddings, responses (also ``background: true``, then ``GET responses/{id}``, its
    ``?stream=true&starting_after=N`` resumption and ``POST responses/{id}/cancel``; model ``fail-bg``
    ends ``failed``, ``incomplete-bg`` ``incomplete``), responses/compact, decisions, images/generations|edits|variations, audio/transcriptions|translations|speech,
    moderations (an input containing "kill" is flagged for violence), files (upload, ``GET files/{id}``
    and ``/content``), batches (completed at once; ``GET batches/{id}``) and ``GET models``. Multipart
    uploads are recorded as form fields in ``body`` and (name, type, size) in ``StubRequest.files``.
    Per request: model ``error-NNN`` or header ``x-stub-status: NNN`` answers that HTTP error on
    every route; ``slow-N`` sleeps N ms; ``x-stub-polls`` sets how many polls see a background
    response ``in_progress`` (default 1); ``x-stub-audio-bytes`` sizes the speech audio (default 256).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: str | None = None,
        usage: Mapping[str, int] | None = None,
        stream_chunks: int = 5,
        chunk_delay: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        unknown = set(usage or {}) - USAGE_KEYS
        if unknown:
            raise ValueError(f"unknown usage keys: {sorted(unknown)}")
        self.reply = reply
        self.usage: dict[str, int] = dict(usage or {})
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self.api_key = api_key
        self._requests: list[StubRequest] = []
        self._requests_lock = threading.Lock()
        self._routes = Routes()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        class Handler(_StubHandler):
            pass

        Handler.stub = self
        return Handler

    @property
    def base_url(self) -> str:
        """OpenAI base URL of the stub (``{url}/v1``)."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[StubRequest]:
        """Snapshot of every request received so far, in arrival order."""
        with self._requests_lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._requests_lock:
            self._requests.clear()

    def _scripted_answer(self, endpoint: str) -> Reply | None:
        """What a subclass serves instead of the stub's own answer to a POST to `endpoint` (the
        tests' recorded answers, tests/replay_stub.py); None here: the stub always answers itself."""
        return None

    def _record(self, request: StubRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self.api_key is None:
            return True
        bearer = headers.get("authorization", "")
        return bearer == f"Bearer {self.api_key}" or headers.get("api-key") == self.api_key


def main(argv: list[str] | None = None) -> int:
    """`python -m respan_instrument.local.openai_stub --port 8766`: serve until interrupted."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(description="A local OpenAI-compatible stub server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with OpenAIStub(host=args.host, port=args.port) as stub:
        print(f"OpenAI-compatible stub on {stub.base_url}  (OPENAI_BASE_URL={stub.base_url})", flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
