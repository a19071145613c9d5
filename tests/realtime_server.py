"""RealtimeServer: a loopback websocket server speaking enough of OpenAI's Realtime protocol for
the SDK's realtime client (GA and beta event names), deterministic, for tests and benchmarks.

What a response does is chosen by the last user text (or the response's instructions):
`fail` ends it failed with an error, `hangup` closes the connection mid-response, `wait` sends a
few deltas and then nothing, `tool` calls a function; otherwise it answers in text, or in audio
with a transcript when the response (or session) asks for audio. `deltas=N` in the text sets the
number of deltas. Needs `websockets` (in the `test` extra).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from websockets.sync.server import ServerConnection

from tests.socket_servers import SocketServer, new_id

__all__ = [
    "RealtimeServer",
    "REPLY",
    "TRANSCRIPT",
    "AUDIO_TRANSCRIPT",
    "TRANSCRIBED_SECONDS",
    "transcription_usage",
]

REPLY = "Hello from the realtime stub."
AUDIO_TRANSCRIPT = "Spoken hello from the realtime stub."
TRANSCRIPT = "what the user said"  # the transcript of any committed input audio
TRANSCRIBED_SECONDS = 30.0  # the seconds of audio a whisper transcription reports
AUDIO_CHUNK = base64.b64encode(bytes(range(256)) * 4).decode()  # 1 KB of "audio" per delta


def usage(audio: bool) -> dict[str, Any]:
    """Usage as `response.done` reports it (the stub's fixed counts)."""
    out_audio = 40 if audio else 0
    return {
        "total_tokens": 180,
        "input_tokens": 120,
        "output_tokens": 60,
        "input_token_details": {
            "text_tokens": 80,
            "audio_tokens": 40,
            "image_tokens": 0,
            "cached_tokens": 64,
            "cached_tokens_details": {"text_tokens": 48, "audio_tokens": 16, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 60 - out_audio, "audio_tokens": out_audio},
    }


def transcription_usage(model: str) -> dict[str, Any]:
    """An input-audio transcription's usage: seconds of audio for whisper, else tokens."""
    if "whisper" in model:
        return {"type": "duration", "seconds": TRANSCRIBED_SECONDS}
    return {
        "type": "tokens",
        "input_tokens": 50,
        "output_tokens": 10,
        "total_tokens": 60,
        "input_token_details": {"audio_tokens": 50, "text_tokens": 0},
    }


class _Session:
    """One connection's conversation, spoken in GA or beta event names."""

    def __init__(self, ws: ServerConnection, beta: bool, model: str) -> None:
        self.ws = ws
        self.beta = beta
        self.session: dict[str, Any] = {"id": new_id("sess"), "object": "realtime.session", "model": model}
        self.last_text = ""
        self.audio_bytes = 0
        self.previous: str | None = None

    def transcriber(self) -> str | None:
        """The input-audio transcription model the session was configured with, if any."""
        config = (
            ((self.session.get("audio") or {}).get("input") or {}).get("transcription")
            or self.session.get("input_audio_transcription")
            or {}
        )
        model = config.get("model")
        return model if isinstance(model, str) else None

    def send(self, kind: str, **fields: Any) -> None:
        self.ws.send(json.dumps({"type": kind, "event_id": new_id("event"), **fields}))

    def item_created(self, item: dict[str, Any]) -> None:
        if self.beta:
            self.send("conversation.item.created", previous_item_id=self.previous, item=item)
        else:
            self.send("conversation.item.added", previous_item_id=self.previous, item=item)
            self.send("conversation.item.done", previous_item_id=self.previous, item=item)
        self.previous = item["id"]

    def handle(self, event: dict[str, Any]) -> bool:
        """Answer one client event; False when the connection was hung up."""
        kind = event.get("type")
        if kind in ("session.update", "transcription_session.update"):
            self.session.update(event.get("session") or {})
            self.send(kind + "d", session=self.session)
        elif kind == "conversation.item.create":
            item = dict(event.get("item") or {})
            item.setdefault("id", new_id("item"))
            item["content"] = [
                {k: v for k, v in part.items() if k != "audio"} for part in item.get("content") or ()
            ]
            for part in item["content"]:
                if isinstance(part.get("text"), str):
                    self.last_text = part["text"]
            self.item_created(item)
        elif kind == "input_audio_buffer.append":
            self.audio_bytes += len(event.get("audio") or "")
        elif kind == "input_audio_buffer.commit":
            item_id = new_id("item")
            self.send("input_audio_buffer.committed", item_id=item_id, previous_item_id=self.previous)
            part_type = "input_audio"
            self.item_created(
                {
                    "id": item_id,
                    "type": "message",
                    "role": "user",
                    "content": [{"type": part_type, "transcript": None}],
                }
            )
            model = self.transcriber()
            if model is not None:  # (a session transcribes its input audio only when asked)
                self.send(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item_id,
                    content_index=0,
                    transcript=TRANSCRIPT,
                    usage=transcription_usage(model),
                )
        elif kind == "response.create":
            return self.respond(event.get("response") or {})
        return True

    def respond(self, params: dict[str, Any]) -> bool:
        cue = f"{params.get('instructions') or ''} {self.last_text}"
        response_id = new_id("resp")
        base = {"object": "realtime.response", "id": response_id, "conversation_id": "conv_stub"}
        self.send("response.created", response={**base, "status": "in_progress", "output": []})
        if "fail" in cue:
            error = {
                "type": "invalid_request_error",
                "code": "stub_failure",
                "message": "The stub failed this response.",
            }
            self.send(
                "response.done",
                response={
                    **base,
                    "status": "failed",
                    "output": [],
                    "status_details": {"type": "failed", "error": error},
                },
            )
            return True
        if "tool" in cue:
            return self._tool(base)
        modalities = (
            params.get("output_modalities")
            or params.get("modalities")
            or self.session.get("output_modalities")
            or self.session.get("modalities")
            or ["text"]
        )
        audio = "audio" in modalities
        item_id = new_id("item")
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self.send("response.output_item.added", response_id=response_id, output_index=0, item=item)
        words = (AUDIO_TRANSCRIPT if audio else REPLY).split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        match = re.search(r"deltas=(\d+)", cue)
        n = int(match.group(1)) if match else len(pieces)
        pieces = (pieces * (n // len(pieces) + 1))[:n] if n > len(pieces) else pieces[:n]
        at = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        for i, piece in enumerate(pieces):
            if audio:
                self.send(
                    "response.audio.delta" if self.beta else "response.output_audio.delta",
                    **at,
                    delta=AUDIO_CHUNK,
                )
                self.send(
                    "response.audio_transcript.delta"
                    if self.beta
                    else "response.output_audio_transcript.delta",
                    **at,
                    delta=piece,
                )
            else:
                self.send(
                    "response.text.delta" if self.beta else "response.output_text.delta", **at, delta=piece
                )
            if i == 1 and "hangup" in cue:
                self.ws.close(1011, "stub hang-up")
                return False
            if i == 1 and "wait" in cue:
                return True
        text = "".join(pieces)
        if audio:
            part = {"type": "audio" if self.beta else "output_audio", "transcript": text}
        else:
            part = {"type": "text" if self.beta else "output_text", "text": text}
        done = {**item, "status": "completed", "content": [part]}
        self.send("response.output_item.done", response_id=response_id, output_index=0, item=done)
        self.item_created(done)
        self.send(
            "response.done", response={**base, "status": "completed", "output": [done], "usage": usage(audio)}
        )
        return True

    def _tool(self, base: dict[str, Any]) -> bool:
        item_id, call_id = new_id("item"), new_id("call")
        arguments = '{"city": "Paris"}'
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "name": "get_weather",
            "call_id": call_id,
            "arguments": "",
        }
        at = {"response_id": base["id"], "item_id": item_id, "output_index": 0, "call_id": call_id}
        self.send("response.output_item.added", response_id=base["id"], output_index=0, item=item)
        for piece in (arguments[:8], arguments[8:]):
            self.send("response.function_call_arguments.delta", **at, delta=piece)
        self.send("response.function_call_arguments.done", **at, arguments=arguments)
        done = {**item, "status": "completed", "arguments": arguments}
        self.item_created(done)
        self.send(
            "response.done", response={**base, "status": "completed", "output": [done], "usage": usage(False)}
        )
        return True


class RealtimeServer(SocketServer):
    """Serves realtime sessions on 127.0.0.1 from a daemon thread; `url` is the SDK's
    `websocket_base_url`."""

    def __init__(self) -> None:
        super().__init__(self._session)

    def _session(self, ws: ServerConnection) -> None:
        request = ws.request
        headers = request.headers if request is not None else {}
        path = request.path if request is not None else ""
        match = re.search(r"model=([^&]+)", path)
        beta = "realtime=v1" in (headers.get("OpenAI-Beta") or "")
        session = _Session(ws, beta, match.group(1) if match else "gpt-realtime")
        session.send("session.created", session=session.session)
        try:
            for message in ws:
                event = json.loads(message)
                if isinstance(event, dict) and not session.handle(event):
                    return
        except Exception:  # noqa: BLE001, S110 - the client went away: nothing to answer
            return
