"""Hosted Agents calls, on the worker: each agent turn a call showed finished becomes one
`agent` log, once per turn id; the sessions and input the calls showed are remembered for the
turns that follow (endpoints/agents.py says what each call shows).

Records reach the worker in the order their calls ended, so the input an app submits
(`events.create`, `sessions.create(input=...)`) is known when the stream that shows the turn
it started ends; a turn takes the input its session received since the turn before it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from ..endpoints.agents import AGENT_TURN
from ..endpoints.base import Prices, get
from .call_record import CallRecord
from .cost import settle_cost
from .worker_memory import WorkerMemory

_ENDS = frozenset({"completed", "failed"})
# input submitted by a call that kept no content (`attributes(capture_content=False)`, or a trace
# sampled out): the turn it feeds shows no input, whatever the call showing the turn keeps
_WITHHELD = object()


def agent_turns(
    record: CallRecord, lines: list[Any], prices: Prices, seen: WorkerMemory, keeps: bool = True
) -> list[CallRecord]:
    """The logs of the turns `record`'s call showed finished for the first time; `keeps`:
    whether `record`'s call keeps its content (SPEC §16)."""
    endpoint = record.endpoint
    session_id: str | None = getattr(endpoint, "session_id", lambda _: None)(record.request)
    submitted: list[Any] = (
        [] if record.error is not None else getattr(endpoint, "submitted", lambda _: [])(record.request)
    )
    for line in lines:
        session = line.get("session")
        if session is not None:
            sid, model = get(session, "id"), get(get(session, "agent"), "model")
            if isinstance(sid, str) and isinstance(model, str):
                seen.agent_models.put(sid, model)
            if session_id is None and isinstance(sid, str):
                session_id = sid  # (the session `sessions.create` made)
    if submitted and session_id is not None:
        given = submitted if keeps else [_WITHHELD]
        seen.agent_inputs.put(session_id, [*(seen.agent_inputs.get(session_id) or ()), *given])
    out = []
    for line in lines:
        turn = line.get("turn")
        status = get(turn, "status")
        event = line.get("event")
        if event is not None:  # (a stream says how the turn ended; its snapshot may lag)
            status = "completed" if event == "agent.session.turn.completed" else "failed"
        turn_id = get(turn, "id")
        if status not in _ENDS or not isinstance(turn_id, str):
            continue
        key = "agent_turn:" + turn_id
        if key in seen.logged_responses:
            continue
        seen.logged_responses.put(key, True)
        sid = get(turn, "session_id") or session_id
        out.append(
            _turn_record(record, line, turn_id, sid if isinstance(sid, str) else None, status, prices, seen)
        )
    return out


def _turn_record(
    record: CallRecord,
    line: Mapping[str, Any],
    turn_id: str,
    sid: str | None,
    status: str,
    prices: Prices,
    seen: WorkerMemory,
) -> CallRecord:
    turn = line.get("turn")
    model = (seen.agent_models.get(sid) if sid else None) or "unknown"
    request: dict[str, Any] = {"model": model}
    given = line.get("input") or (seen.agent_inputs.get(sid) if sid is not None else None)
    if sid is not None:
        seen.agent_inputs.put(sid, [])  # (what it was given is this turn's, shown or not)
    if given and not any(item is _WITHHELD for item in given):
        request["input"] = given
    endpoint = AGENT_TURN
    sub = CallRecord(endpoint, request, record.base_url, record.start_ns, f"{endpoint.operation} {model}", {})
    sub.end_ns = record.end_ns
    created, done = get(turn, "started_at") or get(turn, "created_at"), get(turn, "completed_at")
    if isinstance(created, (int, float)) and 0 < created * 1e9 <= record.end_ns:
        sub.start_ns = int(created * 1e9)
        if isinstance(done, (int, float)) and created <= done and done * 1e9 <= record.end_ns:
            sub.end_ns = int(done * 1e9)
    sub.stream = record.stream
    sub.settled = True
    sub.trace_id, sub.span_id, sub.parent_id = record.trace_id, random.getrandbits(64), record.parent_id
    attributes = dict(record.attributes)
    attributes["metadata"] = {**(attributes.get("metadata") or {}), "agent_turn_id": turn_id}
    if sid is not None and not attributes.get("thread_identifier"):
        attributes["thread_identifier"] = sid
    sub.attributes = attributes
    sub.response = {
        "id": turn_id,
        "model": model,
        "status": status,
        "usage": line.get("usage"),
        "output": line.get("output"),
    }
    if status == "failed":
        sub.error = endpoint.stream_error(get(turn, "error") or {"message": "The agent turn failed."})
    sub.price_provider = record.price_provider
    if model == "unknown":  # (no price for a model the app never saw named)
        sub.usage = endpoint.outcome(sub.response, False).usage
    else:
        settle_cost(sub, sub.response, prices, False)
    return sub
