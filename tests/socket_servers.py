"""Loopback WebSocket servers for the newest socket surfaces (openai >= 3.63): Responses
WebSocket mode and the Live API. Every event they send is built from the SDK's own pydantic
types (validated, so a shape the SDK would not accept fails here first) and written as OpenAI
writes it, its `type` first.

What a response does is chosen by the text of its input: `error` refuses the request with an
`error` event, `fail` ends it `response.failed`, `incomplete` ends it `response.incomplete`,
`hangup` closes the connection mid-response, `wait` sends two deltas and then nothing,
`successor` makes the server start a second response continuing the first; otherwise it answers
`REPLY` in text deltas and `response.completed`.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.sync.server import Server, ServerConnection, serve

REPLY = "Hello from the socket stub."
USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 0},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 8},
    "total_tokens": 160,
}
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def wire(event: Any) -> str:
    """An SDK event as the server writes it: `type` first, unset fields left out."""
    data = event.to_dict(mode="json", exclude_unset=True)
    return json.dumps({"type": data.pop("type"), **data})


class SocketServer:
    """Serves connections on 127.0.0.1 from a daemon thread, each with `handler(ws)`; `url` is the
    SDK's `websocket_base_url`."""

    def __init__(self, handler: Callable[[ServerConnection], None]) -> None:
        self.connections = 0
        self.errors: list[BaseException] = []  # the stub's own failures, for the tests to check
        self._handler = handler
        self._server: Server = serve(self._serve, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="socket-stub")
        self._thread.start()

    def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        from websockets.exceptions import ConnectionClosed

        try:
            self._handler(ws)
        except ConnectionClosed:  # the client went away: nothing to answer
            return
        except Exception as exc:  # noqa: BLE001 - kept for the tests, which fail on it
            self.errors.append(exc)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def __enter__(self) -> SocketServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- Responses WebSocket mode -------------------------------------------------------------------
def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text_of(v.get("content") if isinstance(v, dict) else v) for v in value)
    if isinstance(value, dict):
        return str(value.get("text") or "")
    return ""


class _Responses:
    """One Responses WebSocket connection."""

    def __init__(self, ws: ServerConnection) -> None:
        import pydantic
        from openai.types.responses.responses_server_event import ResponsesServerEvent

        self.ws = ws
        self.events = pydantic.TypeAdapter(ResponsesServerEvent)  # (each SDK major's own union)
        self.seq = itertools.count(1)

    def send(self, kind: str, **fields: Any) -> None:
        event = self.events.validate_python({"type": kind, "sequence_number": next(self.seq), **fields})
        assert event.type == kind
        self.ws.send(wire(event))

    def response(self, request: dict[str, Any], status: str, output: list[Any], **extra: Any) -> Any:
        from openai.types.responses import Response

        return Response.model_validate(
            {
                "id": extra.pop("id"),
                "object": "response",
                "created_at": 1_700_000_000,
                "model": request.get("model") or "gpt-5.4-mini",
                "status": status,
                "output": output,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "previous_response_id": request.get("previous_response_id"),
                **extra,
            }
        ).to_dict(mode="json", exclude_unset=True)

    def handle(self) -> None:
        for message in self.ws:
            event = json.loads(message)
            kind = event.get("type")
            if kind == "response.create" and not self.respond(event):
                return
            if kind == "response.steer":  # the steered input starts a successor at once
                lane = {"stream_id": event["stream_id"]} if event.get("stream_id") else {}
                successor = {"previous_response_id": event.get("previous_response_id"), **lane}
                if not self.respond({**successor, "input": event.get("input")}):
                    return

    def respond(self, request: dict[str, Any]) -> bool:
        lane = {"stream_id": request["stream_id"]} if request.get("stream_id") else {}
        cue = _text_of(request.get("input"))
        if "error" in cue:
            error = {
                "type": "invalid_request_error",
                "code": "bad_request",
                "message": "The stub refused it.",
            }
            try:
                self.send("error", error=error, status=400, **lane)
            except ValueError:  # (openai 2.x spells the error flat)
                self.send("error", code=error["code"], message=error["message"], **lane)
            return True
        rid = new_id("resp")
        self.send("response.created", response=self.response(request, "in_progress", [], id=rid), **lane)
        item_id = new_id("msg")
        words = REPLY.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        at = {"item_id": item_id, "output_index": 0, "content_index": 0, "logprobs": []}
        for i, piece in enumerate(pieces):
            self.send("response.output_text.delta", delta=piece, **at, **lane)
            if i == 1 and "hangup" in cue:
                self.ws.close(1011, "stub hang-up")
                return False
            if i == 1 and "wait" in cue:
                return True
        message = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": REPLY, "annotations": []}],
        }
        if "fail" in cue:
            error = {"code": "server_error", "message": "The stub failed this response."}
            failed = self.response(request, "failed", [], id=rid, error=error)
            self.send("response.failed", response=failed, **lane)
            return True
        if "incomplete" in cue:
            details = {"reason": "max_output_tokens"}
            done = self.response(
                request, "incomplete", [message], id=rid, usage=USAGE, incomplete_details=details
            )
            self.send("response.incomplete", response=done, **lane)
            return True
        done = self.response(request, "completed", [message], id=rid, usage=USAGE)
        self.send("response.completed", response=done, **lane)
        if "successor" in cue:  # the server continues on its own, from the response just done
            return self.respond({"model": request.get("model"), "previous_response_id": rid, **lane})
        return True


def responses_server() -> SocketServer:
    return SocketServer(lambda ws: _Responses(ws).handle())


# ---- Live API -------------------------------------------------------------------------------------
LIVE_MODEL = "gpt-live-1"
HEARD = "what the caller said"
SAID = "Hello from live."
DELEGATED = "Delegated answer."
SECONDS_PER_TURN = 6  # billable seconds each input audio chunk adds to the session


class _Live:
    """One Live connection: a primary session (`/live/sessions`), a sideband attached to one
    (`/live/sessions/{id}/attach`) or a fork of one (`/live/sessions/{id}/fork`).

    `session.input_audio.append` is answered with transcripts, audio and a usage update;
    `response.create` with a delegated Responses run (`response.event`s, the nested events
    validated as the SDK's Responses stream events); `session.close` with `session.closed`;
    `session.instructions.append` of `hangup` closes the socket without `session.closed`."""

    sessions: dict[str, dict[str, Any]] = {}  # session id -> its resource, shared by connections

    def __init__(self, ws: ServerConnection) -> None:
        import pydantic
        from openai.types.live.server_event import ServerEvent
        from openai.types.responses.response_stream_event import ResponseStreamEvent

        self.ws = ws
        self.events = pydantic.TypeAdapter(ServerEvent)
        self.nested = pydantic.TypeAdapter(ResponseStreamEvent)
        self.seq = itertools.count(1)
        self.session: dict[str, Any] | None = None
        self.seconds = 0

    def send(self, kind: str, **fields: Any) -> None:
        event = self.events.validate_python({"type": kind, "event_id": new_id("event"), **fields})
        self.ws.send(wire(event))

    def usage(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "active_seconds": self.seconds - 1, "paused_seconds": 1}

    def handle(self) -> None:
        request = self.ws.request
        path = request.path if request is not None else ""
        parts = path.split("?")[0].rstrip("/").split("/")
        if parts[-1] == "attach":  # a sideband sees the session as it is
            self.session = self.sessions[parts[-2]]
            self.seconds = 30
            self.send("session.usage.updated", usage=self.usage())
        for message in self.ws:
            event = json.loads(message)
            if not self.answer(event, parts):
                return

    def answer(self, event: dict[str, Any], parts: list[str]) -> bool:
        kind = event.get("type")
        if kind == "session.start":
            config = event.get("session") or {}
            model = config.get("model") or (
                self.sessions[parts[-2]]["model"] if parts[-1] == "fork" else LIVE_MODEL
            )
            self.session = {
                "id": new_id("live"),
                "model": model,
                "expires_at": 1_900_000_000,
                "status": "active",
            }
            if config.get("instructions"):
                self.session["instructions"] = config["instructions"]
            self.sessions[self.session["id"]] = self.session
            self.send("session.started", session=self.session)
        elif kind == "session.input_audio.append":
            self.seconds += SECONDS_PER_TURN
            self.send("session.input_transcript.delta", delta=HEARD, start_ms=0, end_ms=900)
            self.send("session.output_audio.delta", delta="AAAA" * 64, start_ms=0, end_ms=20)
            for piece in ("Hello ", "from live."):
                self.send("session.output_transcript.delta", delta=piece, start_ms=0, end_ms=20)
            self.send("session.usage.updated", usage=self.usage())
        elif kind == "response.create":
            self.delegate()
        elif kind == "session.instructions.append" and "hangup" in json.dumps(event):
            self.ws.close(1011, "stub hang-up")
            return False
        elif kind == "session.close":
            self.send("session.closed", reason="close_requested", session=self.session, usage=self.usage())
            self.ws.close()
            return False
        return True

    def delegate(self) -> None:
        """A delegated Responses run: lifecycle snapshots without output, and text deltas."""
        delegation = new_id("deleg")
        rid = new_id("resp")
        snapshot = {
            "id": rid,
            "object": "response",
            "created_at": 1_700_000_000,
            "model": "gpt-4.1-mini",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }

        def nested(kind: str, **fields: Any) -> None:
            inner = self.nested.validate_python({"type": kind, "sequence_number": next(self.seq), **fields})
            data = inner.to_dict(mode="json", exclude_unset=True)
            self.send("response.event", event={"type": data.pop("type"), **data}, delegation_id=delegation)

        nested("response.created", response={**snapshot, "status": "in_progress"})
        at = {"item_id": new_id("msg"), "output_index": 0, "content_index": 0, "logprobs": []}
        for piece in ("Delegated ", "answer."):
            nested("response.output_text.delta", delta=piece, **at)
        nested("response.completed", response={**snapshot, "status": "completed", "usage": USAGE})


def live_server() -> SocketServer:
    return SocketServer(lambda ws: _Live(ws).handle())


# ---- Realtime translations -------------------------------------------------------------------------
TRANSLATED = "Hello, how are you?"
HEARD_SPANISH = "Hola, ¿cómo estás?"


class _Translation:
    """One translation session: each `session.input_audio_buffer.append` is answered with an input
    transcript delta (when the session transcribes its input), audio and the translation's
    transcript; `session.close` with `session.closed`; audio `hangup` closes the socket."""

    def __init__(self, ws: ServerConnection) -> None:
        import pydantic
        from openai.types.realtime.realtime_translation_server_event import RealtimeTranslationServerEvent

        self.ws = ws
        self.events = pydantic.TypeAdapter(RealtimeTranslationServerEvent)

    def send(self, kind: str, **fields: Any) -> None:
        self.ws.send(wire(self.events.validate_python({"type": kind, "event_id": new_id("event"), **fields})))

    def handle(self) -> None:
        request = self.ws.request
        query = (request.path if request is not None else "").partition("?")[2]
        model = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get(
            "model", "gpt-realtime-translate"
        )
        session = {
            "id": new_id("sess"),
            "type": "translation",
            "model": model,
            "expires_at": 1_900_000_000,
            "audio": {
                "input": {"transcription": {"model": "gpt-realtime-whisper"}},
                "output": {"language": "en"},
            },
        }
        self.send("session.created", session=session)
        for message in self.ws:
            event = json.loads(message)
            kind = event.get("type")
            if kind == "session.input_audio_buffer.append":
                if event.get("audio") == "hangup":
                    self.ws.close(1011, "stub hang-up")
                    return
                self.send("session.input_transcript.delta", delta=HEARD_SPANISH)
                self.send("session.output_audio.delta", delta="AAAA" * 64)
                self.send("session.output_transcript.delta", delta=TRANSLATED)
            elif kind == "session.close":
                self.send("session.closed")
                self.ws.close()
                return


def translation_server() -> SocketServer:
    return SocketServer(lambda ws: _Translation(ws).handle())


def socket_client(server: Any, is_async: bool = False) -> Any:
    """An openai client whose WebSocket surfaces connect to `server` (its HTTP base goes
    nowhere: these tests make no HTTP call)."""
    import openai
    from conftest import OPENAI_KEY

    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(api_key=OPENAI_KEY, base_url="http://127.0.0.1:9/v1", websocket_base_url=server.url)


def surface(client: Any, path: str) -> Any:
    """The client's resource at a dotted `path`: "responses", "beta.realtime", ..."""
    for name in path.split("."):
        client = getattr(client, name)
    return client


def events_until(conn: Any, kind: str) -> list[Any]:
    """The events a connection yields up to and including the first of type `kind`."""
    events = []
    for event in conn:
        events.append(event)
        if event.type == kind:
            break
    return events
