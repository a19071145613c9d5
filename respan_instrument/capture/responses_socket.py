"""Responses WebSocket mode (`responses.connect()`, `beta.responses.connect()`): each response
that runs on the socket is one `response` log, as a streamed Responses call.

A response is started by the app's `response.create` (its request is that event) or by the
server (a successor after steering or an automatic continuation: its request is what the
response says it continues, and the input the app steered into it). Requests on one lane
(`stream_id`) are answered in order, so a lane's `response.created` belongs to its oldest
unanswered `response.create`. A response ends at its terminal event (`response.completed`,
`.failed`, `.incomplete`), whose response holds its output and usage; or it is cut short when the
connection closes first (either side, or the connection is dropped), and is logged with the text
that arrived.

As for realtime sessions, the many deltas cost a substring test on the message's first bytes;
only the few events that shape a log are parsed, and only text deltas are kept (for a response
cut short).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from .. import _context
from .._errors import contained
from ..endpoints.base import as_dict, get
from ..endpoints.responses import RESPONSES, ResponsesAccumulator
from ..record.call_record import CallRecord
from . import agents_run as _agents_run
from .sockets import Protocol, Recorder, message
from .traced_call import Hooks

_IN_EVENT = contained("reading a Responses websocket event")
_IN_FINISHING = contained("logging a Responses websocket response")
_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})
_PARSED = (
    b'"response.created"',
    b'"response.completed"',
    b'"response.failed"',
    b'"response.incomplete"',
    b'"error"',
)
_NOT_REQUEST = ("type", "stream_id", "event_id")
_SENTINELS = frozenset({"Omit", "NotGiven"})
_scope = _context.current_reader()
_STEERED = 64  # steered inputs (and finished ids) kept for successors not yet started


class _Flight:
    """One response in flight on a lane."""

    __slots__ = ("start_ns", "ttft_ns", "request", "id", "created", "texts", "anchor", "scope")

    def __init__(self, start_ns: int, request: dict[str, Any], anchor: Any = None, scope: Any = None) -> None:
        self.start_ns = start_ns
        self.anchor = anchor  # the Agents run it was asked for in (capture/agents_tracing.py), if any
        self.scope = scope  # attributes() where it was asked for, in such a run
        self.ttft_ns: int | None = None
        self.request = request
        self.id: str | None = None
        self.created: Any = None  # the response as `response.created` showed it
        self.texts: list[bytes] = []  # its text deltas, for a response cut short


def _given(value: Any) -> bool:
    """False for the SDK's "not given" sentinels, which its resources put in the events they
    send and which never reach the wire."""
    return type(value).__name__ not in _SENTINELS


def _lane(event: Any) -> Any:
    lane = get(event, "stream_id")
    return lane if _given(lane) else None


def _snapshot(event: Any) -> dict[str, Any]:
    """The request a `response.create` makes, as the app sent it, copied so that later changes
    to the app's objects cannot reach the log."""
    fields = as_dict(event)
    if not isinstance(fields, Mapping):
        return {}
    request = {k: v for k, v in fields.items() if k not in _NOT_REQUEST and _given(v)}
    copied = json.loads(json.dumps(request, default=str))
    return copied if isinstance(copied, dict) else {}


class ResponsesSocket(Recorder):
    """A Responses WebSocket connection: the requests waiting on each lane, the response running
    on each, and the ids of those finished (to know a server-started successor)."""

    __slots__ = ("waiting", "running", "finished", "steered")
    parsed = _PARSED
    reading = _IN_EVENT

    def __init__(self, hooks: Hooks, ctx: Any, scope: Mapping[str, Any]) -> None:
        super().__init__(hooks, ctx, scope)
        self.waiting: dict[Any, deque[tuple[int, dict[str, Any], Any, Any]]] = {}
        self.running: dict[Any, _Flight] = {}
        self.finished: deque[str] = deque(maxlen=_STEERED)  # the latest finished, newest last
        self.steered: dict[str, Any] = {}  # previous_response_id -> the input steered after it

    # ---- the app's thread / loop -----------------------------------------------------------
    def received(self, data: Any) -> None:
        got = message(data)
        if got is None:
            return
        data, head = got
        if b'delta"' in head:
            # (audio deltas, the many events of a spoken answer, carry no output a log keeps)
            if b"audio.delta" not in head and b'"response.' in head and self.running:
                self._delta(data, head)
            return
        self.read(data, head)

    def _delta(self, data: bytes, head: bytes) -> None:
        running = self.running
        if len(running) == 1:
            (flight,) = running.values()
        else:  # several lanes at once: which one is in the event
            with _IN_EVENT:
                event = json.loads(data)
                flight = running.get(event.get("stream_id") if type(event) is dict else None)  # type: ignore[assignment]
            if flight is None:
                return
        if b"output_text.delta" in head:
            flight.texts.append(data)
        elif b"refusal.delta" not in head and b"function_call_arguments.delta" not in head:
            return  # (audio, reasoning and tool-progress deltas carry no output)
        if flight.ttft_ns is None:
            flight.ttft_ns = time.time_ns()

    def sent(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "response.create":
            with _IN_EVENT:
                lane = _lane(event)
                waiting = self.waiting.setdefault(lane, deque())
                anchor = _agents_run.here()
                # an Agents model's one connection serves many runs: each call takes its own
                # run's attributes(), not those where the connection opened
                scope = _scope() if anchor is not None else None
                waiting.append((time.time_ns(), _snapshot(event), anchor, scope))
        elif kind == "response.steer":
            with _IN_EVENT:
                previous = get(event, "previous_response_id")
                if isinstance(previous, str):
                    if len(self.steered) >= _STEERED:
                        self.steered.pop(next(iter(self.steered)))
                    self.steered[previous] = _snapshot(event).get("input")

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        lane = event.get("stream_id")
        if kind == "response.created":
            response = event.get("response")
            if isinstance(response, dict):
                self._created(lane, response)
        elif kind in _TERMINAL:
            response = event.get("response")
            if isinstance(response, dict):
                self._finish(lane, response, None)
        elif kind == "error":
            self._rejected(lane, event)

    def _created(self, lane: Any, response: dict[str, Any]) -> None:
        now = time.time_ns()
        previous = response.get("previous_response_id")
        queue = self.waiting.get(lane)
        successor = isinstance(previous, str) and previous in self.finished
        if queue and not (successor and queue[0][1].get("previous_response_id") != previous):
            start_ns, request, anchor, scope = queue.popleft()
        else:  # the server started it: it continues `previous` with what the app steered
            start_ns, request, anchor, scope = now, {"model": response.get("model")}, None, None
            if isinstance(previous, str):
                request["previous_response_id"] = previous
                steered = self.steered.pop(previous, None)
                if steered is not None:
                    request["input"] = steered
        flight = _Flight(start_ns, request, anchor, scope)
        flight.id = response.get("id") if isinstance(response.get("id"), str) else None
        flight.created = response
        earlier = self.running.get(lane)
        if earlier is not None:  # (a lane runs one at a time: the earlier one ended unseen)
            self._log(earlier, None, None, True)
        self.running[lane] = flight

    def _flight_of(self, lane: Any, response_id: Any) -> _Flight | None:
        flight = self.running.get(lane)
        if flight is not None and (flight.id == response_id or flight.id is None):
            return self.running.pop(lane)
        for key, other in self.running.items():
            if other.id == response_id:
                return self.running.pop(key)
        return None

    def _finish(self, lane: Any, response: dict[str, Any], error: Any) -> None:
        response_id = response.get("id")
        flight = self._flight_of(lane, response_id)
        if flight is None:  # its start came before we were watching
            flight = _Flight(time.time_ns(), {"model": response.get("model")})
        if isinstance(response_id, str):
            self.finished.append(response_id)
        if response.get("status") == "failed":
            error = response.get("error") or {"message": "The response failed."}
        self._log(flight, response, error, False)

    def _rejected(self, lane: Any, event: dict[str, Any]) -> None:
        """An `error` event: the oldest request still waiting on the lane was refused (else the
        response running on it failed)."""
        error = event.get("error")
        if not isinstance(error, dict):  # (as older SDKs spell it: the event is the error)
            error = event
        queue = self.waiting.get(lane)
        if queue:
            flight = _Flight(*queue.popleft())
        else:
            running = self.running.pop(lane, None)
            if running is None:
                return
            flight = running
        self._log(flight, None, {**error, "status": event.get("status")}, False)

    # ---- a response ends -------------------------------------------------------------------
    def closed(self) -> None:
        running, self.running = self.running, {}
        self.waiting.clear()
        for flight in running.values():
            with _IN_FINISHING:
                self._log(flight, None, None, True)

    def _log(self, flight: _Flight, response: Any, error: Any, cut_short: bool) -> None:
        end_ns = time.time_ns()
        request = flight.request
        if response is None and error is None:
            response = _arrived(flight)
        model = get(response, "model") if response is not None else None
        model = model or request.get("model") or "unknown"
        record = CallRecord(
            RESPONSES,
            request,
            "",
            flight.start_ns,
            f"{RESPONSES.operation} {model}",
            self._attributes(flight.scope),
        )
        record.end_ns = end_ns
        record.stream = True
        record.ttft_ns = flight.ttft_ns
        record.response = response
        record.cut_short = cut_short
        record.anchor = flight.anchor
        if error is not None:
            record.error = _error(error)
        self.hand_over(record)

    def _attributes(self, scope: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if scope is None:
            return self.attributes(None, websocket="true")
        return {**scope, "metadata": {**(scope.get("metadata") or {}), "websocket": "true"}}


def _error(error: Any) -> BaseException:
    exc = RESPONSES.stream_error(error)
    status = error.get("status") if isinstance(error, dict) else None
    if isinstance(status, int):
        vars(exc)["status_code"] = status
    return exc


def _arrived(flight: _Flight) -> dict[str, Any]:
    """A response cut short, shaped like a terminal event's, from what arrived of it."""
    acc = ResponsesAccumulator()
    if flight.created is not None:
        acc.add({"type": "response.created", "response": flight.created})
    for data in flight.texts:
        acc.add(json.loads(data))
    response = dict(flight.created) if isinstance(flight.created, dict) else {"id": flight.id}
    response["output"] = acc.output  # (its status stays as it was: a background one goes on)
    return response


PROTOCOL = Protocol(
    (
        ("openai.resources.responses.responses", "ResponsesConnection"),
        ("openai.resources.beta.responses.responses", "ResponsesConnection"),
    ),
    ResponsesSocket,
)
