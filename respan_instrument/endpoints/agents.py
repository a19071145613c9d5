"""Hosted Agents (`beta.agents.sessions`, `/agents/sessions...`): each agent turn the app sees
finish is one `agent` log.

An agent session runs turns on OpenAI's side; the app sees them through the calls it makes:
the session's event streams (`sessions.create(stream=True)`, `events.stream`, the
`sessions.stream` helper), and the turns it reads (`turns.retrieve`, `turns.list`). A turn is
logged when a call first shows it `completed` (`agent.session.turn.completed`, or a turn object in
that status), with the usage that event or object carries; a turn no call shows finished cannot
be logged. Each call is one record; the worker turns the finished turns it showed into one log
each, once per turn id (record/agent_turns.py), with the session's model (from the session
objects and events the app saw) and the input the app submitted to the session before it.

This module describes the calls: which URL is which, the stream accumulator that collects a
stream's turns, and what a call shows (`lines`: its finished turns, the session it showed, the
input it submitted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, Text, as_dict, fields_of, get
from .usage import TokenUsage

_TURN_ENDS = frozenset({"agent.session.turn.completed", "agent.session.turn.failed"})


class _Turn:
    """A turn as a stream shows it: its output items and text, then its end."""

    __slots__ = ("given", "items", "text", "end")

    def __init__(self) -> None:
        self.given: list[Any] = []  # the user's messages the turn showed
        self.items: list[Any] = []
        self.text = Text()
        self.end: Any = None  # the turn.completed / turn.failed event


class AgentEvents:
    """An agent session's event stream: the session it shows (`agent.session.created`) and its
    turns, by id (SDK models or parsed JSON alike)."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: Any = None  # (per turn, in `turns`)
        self.session: Any = None
        self.turns: dict[str, _Turn] = {}

    def add(self, event: Any) -> bool:
        e = fields_of(event)
        kind = e.get("type")
        turn_id = e.get("turn_id")
        if kind == "agent.session.turn.output_text.delta":
            delta = e.get("delta")
            if isinstance(turn_id, str) and isinstance(delta, str):
                self.turns.setdefault(turn_id, _Turn()).text.add(delta)
            return True
        if kind == "agent.session.turn.item.done" or kind == "agent.session.turn.item.added":
            item = e.get("item")
            if isinstance(turn_id, str) and item is not None:
                turn = self.turns.setdefault(turn_id, _Turn())
                if get(item, "role") == "user":
                    if kind.endswith("added"):
                        turn.given.append(as_dict(item))
                elif kind.endswith("done"):
                    turn.items.append(as_dict(item))
        elif kind in _TURN_ENDS:
            if isinstance(turn_id, str):
                self.turns.setdefault(turn_id, _Turn()).end = {
                    "type": kind,
                    "turn": as_dict(e.get("turn")),
                    "usage": as_dict(e.get("usage")),
                }
        elif kind == "agent.session.created":
            self.session = as_dict(e.get("session"))
            self.model = get(get(self.session, "agent"), "model")
        return False


def _turn_line(turn: Any, usage: Any, items: list[Any], text: str) -> dict[str, Any]:
    output = items or (
        [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]
        if text
        else []
    )
    return {"turn": turn, "usage": usage if usage is not None else get(turn, "usage"), "output": output}


class AgentTurn(Endpoint):
    """One agent turn, as its log shows it (made on the worker from what a call showed):
    `{"model", "input"}` as its request, `{"id", "model", "status", "usage", "output"}` as its
    response."""

    path = "agent turn"  # (never matched against a URL: the calls below show turns)
    operation = "invoke_agent"
    log_type = "agent"
    request_fields: frozenset[str] = frozenset()
    usage_names = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
    finish_field = "status"

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        given = request.get("input")
        if given:
            log["input"] = given
        output = get(response, "output")
        if output:
            log["output"] = output
            calls = [i for i in output if isinstance(i, Mapping) and i.get("type") == "function_call"]
            if calls:
                log["tool_calls"] = calls


class AgentSessions(Endpoint):
    """`POST /agents/sessions` (`sessions.create`, streamed or not): the session it makes, the
    input it submits, and (streamed) the turns it shows. The call itself is no model work of
    its own: its usage is none (a session object's is the whole session's, so far)."""

    path = "/agents/sessions"
    routes: tuple[str, ...] = ("/agents/sessions",)
    operation = "invoke_agent"
    log_type = "agent"
    request_fields: frozenset[str] = frozenset()
    stream_usage = False
    stream_errors = False  # an error arrives as an event the SDK passes on
    logs_turns = True
    # The SDK's helpers (`get_final_result()`, tool dispatch) read the stream themselves, past a
    # proxy: it is tapped at its events whoever reads it, and its turns are read on the worker.
    always_taps = True

    def accumulator(self) -> AgentEvents:
        return AgentEvents()

    def lines(self, response: Any) -> list[Any] | None:
        """The finished turns a call showed, each `{"turn", "usage", "output"}`; and, as
        `{"session": ...}`, any session object it showed (for the model of its turns)."""
        out: list[Any] = []
        if isinstance(response, AgentEvents):
            if response.session is not None:
                out.append({"session": response.session})
            for turn in response.turns.values():
                end = turn.end
                if end is not None:
                    line = _turn_line(end.get("turn"), end.get("usage"), turn.items, turn.text.value())
                    out.append({**line, "event": end.get("type"), "input": turn.given})
            return out
        kind = get(response, "object")
        if kind == "agent.session":
            out.append({"session": as_dict(response)})
        elif kind == "agent.session.turn":
            out.append(_turn_line(as_dict(response), None, [], ""))
        elif kind == "list":
            out.extend(
                _turn_line(as_dict(t), None, [], "")
                for t in get(response, "data") or ()
                if get(t, "object") == "agent.session.turn"
            )
        return out

    def submitted(self, request: Mapping[str, Any]) -> list[Any]:
        """The input a call submitted to its session: `sessions.create`'s `input` as messages."""
        given = request.get("input")
        if isinstance(given, str):
            return [{"role": "user", "content": given}]
        return list(given) if isinstance(given, list) else []

    def session_id(self, request: Mapping[str, Any]) -> str | None:
        return None  # (the session it makes is in its answer)

    def usage(self, usage: Any) -> TokenUsage | None:
        return None

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None


class AgentSession(AgentSessions):
    """`/agents/sessions/{id}` (`retrieve`, `update`): the session object, for its model."""

    path = "/agents/sessions/{id}"
    routes: tuple[str, ...] = ("/agents/sessions/{id}",)
    methods = frozenset({"get", "post"})
    polls = True

    def session_id(self, request: Mapping[str, Any]) -> str | None:
        sid = request.get("id")
        return sid if isinstance(sid, str) else None


class AgentSessionEvents(AgentSession):
    """`/agents/sessions/{id}/events`: `GET` streams the session's events (`events.stream`,
    `sessions.stream`); `POST` submits input events (`events.create`)."""

    path = "/agents/sessions/{id}/events"
    routes: tuple[str, ...] = ("/agents/sessions/{id}/events",)

    def submitted(self, request: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for event in request.get("events") or ():
            if get(event, "type") == "agent.session.input.message":
                out.extend(get(event, "input") or ())
            elif isinstance(event, Mapping):
                out.append(dict(event))
        return out


class AgentTurns(AgentSession):
    """`/agents/sessions/{id}/turns` and `.../turns/{turn_id}` (`turns.list`, `turns.retrieve`):
    turns read as objects, logged when one is `completed` and was not logged before."""

    path = "/agents/sessions/{id}/turns"
    routes = ("/agents/sessions/{id}/turns", "/agents/sessions/{id}/turns/{turn_id}")
    methods = frozenset({"get"})


AGENT_TURN = AgentTurn()
AGENT_SESSIONS = AgentSessions()
AGENT_SESSION = AgentSession()
AGENT_SESSION_EVENTS = AgentSessionEvents()
AGENT_TURNS = AgentTurns()
