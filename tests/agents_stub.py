"""A Hosted Agents (`/agents/sessions...`) server for the SDK's own HTTP client, as an httpx2
`MockTransport` handed to the client (openai >= 3.63 only). Every body and event is built from
the SDK's own pydantic types, validated, and written as the API writes it.

A session runs one turn per input: `POST .../events` (or `sessions.create(input=...)`) queues
the input, and the next `GET .../events` stream shows its turn (created, the user's message,
text deltas, the assistant's message, completed with usage, idle). Input containing `fail` ends
its turn `failed`. `GET .../events?replay=1` replays the last turn's events (a second subscriber
seeing the same turn); `turns.retrieve` / `turns.list` read turns as objects.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

MODEL = "gpt-4.1-mini"
ANSWER = "The agent's answer."
USAGE = {
    "input_tokens": 300,
    "input_tokens_details": {"cached_tokens": 100},
    "output_tokens": 50,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 350,
}
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


class AgentsStub:
    """The sessions, their queued input and turns; `transport()` answers the SDK's requests."""

    def __init__(self) -> None:
        import pydantic
        from openai.types.beta.agent_session import AgentSession
        from openai.types.beta.agent_session_event import AgentSessionEvent
        from openai.types.beta.agents.sessions.turn import Turn

        self.session_type = AgentSession
        self.turn_type = Turn
        self.events = pydantic.TypeAdapter(AgentSessionEvent)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.queued: dict[str, list[Any]] = {}
        self.turns: dict[str, list[dict[str, Any]]] = {}
        self.last: dict[str, list[str]] = {}  # session id -> its last turn's SSE frames

    # ---- objects -------------------------------------------------------------------------------
    def session(self, sid: str, status: str = "idle") -> dict[str, Any]:
        agent = {
            "id": "agent_stub",
            "model": MODEL,
            "multi_agent": {"enabled": False},
            "reasoning": {},
            "service_tier": "auto",
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tools": [],
        }
        data = {
            "id": sid,
            "object": "agent.session",
            "created_at": 1_700_000_000,
            "last_active_at": 1_700_000_000,
            "metadata": {},
            "required_actions": [],
            "status": status,
            "vault_ids": [],
            "agent": agent,
            "environment": {"type": "none"},
            "spend_control": {},
        }
        return self.session_type.model_validate(data).to_dict(mode="json", exclude_unset=True)

    def turn(self, sid: str, tid: str, status: str, usage: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": tid,
            "agent_id": "agent_stub",
            "created_at": 1_700_000_000,
            "object": "agent.session.turn",
            "session_id": sid,
            "status": status,
        }
        if usage is not None:
            data["usage"] = usage
        if status == "failed":
            data["error"] = {"code": "server_error", "message": "The stub failed this turn."}
        return self.turn_type.model_validate(data).to_dict(mode="json", exclude_unset=True)

    def frame(self, kind: str, **fields: Any) -> str:
        event = self.events.validate_python({"type": kind, "event_id": _id("evt"), **fields})
        data = event.to_dict(mode="json", exclude_unset=True)
        return f"event: {kind}\ndata: {json.dumps({'type': data.pop('type'), **data})}\n\n"

    # ---- a turn ----------------------------------------------------------------------------------
    def run_turn(self, sid: str) -> list[str]:
        """The frames of the turn the session's queued input starts (none when nothing is queued)."""
        given = self.queued.pop(sid, [])
        if not given:
            return []
        tid = _id("turn")
        text = json.dumps(given)
        failed = "fail" in text
        at = {"session_id": sid, "turn_id": tid}
        frames = [self.frame("agent.session.turn.created", turn=self.turn(sid, tid, "in_progress"), **at)]
        content = given[-1].get("content")
        said = content[0].get("text") if isinstance(content, list) else content
        user = {
            "id": _id("msg"),
            "type": "message",
            "role": "user",
            "status": "completed",
            "turn_id": tid,
            "content": [{"type": "input_text", "text": str(said)}],
        }
        frames.append(self.frame("agent.session.turn.item.added", item=user, output_index=0, **at))
        if failed:
            turn = self.turn(sid, tid, "failed", USAGE)
            frames.append(self.frame("agent.session.turn.failed", turn=turn, usage=USAGE, **at))
        else:
            item_id = _id("msg")
            for piece in ("The agent's ", "answer."):
                frames.append(
                    self.frame(
                        "agent.session.turn.output_text.delta",
                        delta=piece,
                        item_id=item_id,
                        output_index=1,
                        content_index=0,
                        **at,
                    )
                )
            answer = {
                "id": item_id,
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "turn_id": tid,
                "content": [{"type": "output_text", "text": ANSWER, "annotations": []}],
            }
            frames.append(self.frame("agent.session.turn.item.done", item=answer, output_index=1, **at))
            turn = self.turn(sid, tid, "completed", USAGE)
            frames.append(self.frame("agent.session.turn.completed", turn=turn, usage=USAGE, **at))
        self.turns.setdefault(sid, []).append(turn)
        frames.append(self.frame("agent.session.idle", session=self.session(sid)))
        self.last[sid] = frames
        return frames

    # ---- HTTP ------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, body: Any) -> tuple[int, Any, bool]:
        """(status, JSON body or SSE frames, is a stream)."""
        parts = (
            path.split("/agents/sessions", 1)[1].strip("/").split("/") if "/agents/sessions" in path else []
        )
        if method == "POST" and parts == [""]:
            sid = _id("asess")
            self.sessions[sid] = self.session(sid)
            given = body.get("input")
            if given:
                self.queued[sid] = (
                    [{"role": "user", "content": given}] if isinstance(given, str) else list(given)
                )
            if body.get("stream"):
                created = self.frame("agent.session.created", session=self.sessions[sid])
                return 200, lambda: [created, *self.run_turn(sid)], True
            return 200, self.sessions[sid], False
        sid = parts[0] if parts else ""
        if sid not in self.sessions:
            return 404, {"error": {"message": "No such session.", "type": "invalid_request_error"}}, False
        rest = parts[1:]
        if rest == []:
            return 200, self.sessions[sid], False
        if rest == ["events"] and method == "POST":
            for event in body.get("events") or ():
                self.queued.setdefault(sid, []).extend(event.get("input") or ())
            return 202, None, False
        if rest == ["events"]:  # (read when the app reads it: the helper subscribes first)
            return (
                200,
                (lambda: self.last.get(sid, [])) if "replay=1" in query else (lambda: self.run_turn(sid)),
                True,
            )
        if rest == ["turns"]:
            page = {"object": "list", "data": self.turns.get(sid, []), "has_more": False}
            return 200, page, False
        if len(rest) == 2 and rest[0] == "turns":
            found = [t for t in self.turns.get(sid, []) if t["id"] == rest[1]]
            return (200, found[0], False) if found else (404, {"error": {"message": "No such turn."}}, False)
        return 404, {"error": {"message": "Not found."}}, False

    def transport(self, is_async: bool = False) -> Any:
        import httpx2

        def answer(request: Any) -> Any:
            raw = request.content
            body = json.loads(raw) if raw else {}
            status, data, stream = self.handle(
                request.method, request.url.path, request.url.query.decode(), body
            )
            if stream:
                body = _Lazy(data)  # (its frames are made when the app reads them)
                return httpx2.Response(status, stream=body, headers={"content-type": "text/event-stream"})
            if data is None:
                return httpx2.Response(status)
            return httpx2.Response(status, json=data)

        class _Lazy(httpx2.SyncByteStream, httpx2.AsyncByteStream):
            def __init__(self, frames: Any) -> None:
                self.frames = frames

            def __iter__(self) -> Any:
                for frame in self.frames():
                    yield frame.encode()

            async def __aiter__(self) -> Any:
                for frame in self.frames():
                    yield frame.encode()

        if is_async:

            async def async_answer(request: Any) -> Any:
                await request.aread()
                return answer(request)

            return httpx2.MockTransport(async_answer)
        return httpx2.MockTransport(answer)
