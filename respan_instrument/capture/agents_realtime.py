"""Realtime agents (`agents.realtime`): each model response of a session as one request log.

The Agents SDK's realtime model talks to OpenAI over a websocket of its own, not through the
`openai` SDK's `realtime.connect()`, and makes no tracing spans for it; so its events are read
where it parses and sends them (`OpenAIRealtimeWebSocketModel._handle_ws_event`,
`_send_raw_message`, `_send_raw_message_if`, `close`) and handed to the same session state that
logs a `realtime.connect()` connection (capture/realtime_socket.py, SPEC §12): one chat log per model
response, with its usage, cost and `ttft`, the session id as thread, `metadata.realtime`.
"""

from __future__ import annotations

import json
from typing import Any

from .._errors import contained, log_once
from . import realtime_socket as _realtime
from . import sockets as _sockets
from .on_import import WhenImported

MODULE = "agents.realtime.openai_realtime"
CLASS = "OpenAIRealtimeWebSocketModel"
_IN_EVENT = contained("reading a realtime agent's event")


async def _received(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    event = args[0] if args else kwargs.get("event")
    state = _sockets._state(instance, _realtime.Session)
    if state is not None and type(event) is dict:
        with _IN_EVENT:
            kind = event.get("type")
            if isinstance(kind, str) and kind.endswith("audio.delta"):
                # the audio itself is never read: its arrival is what counts (the first output)
                state.received(b'{"type":"' + kind.encode() + b'","delta":""}')
            else:
                state.received(json.dumps(event))
    return await wrapped(*args, **kwargs)


async def _sent(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = await wrapped(*args, **kwargs)  # (an event that failed to go out started nothing)
    event = args[0] if args else kwargs.get("event")
    if result is not False and event is not None:  # (`_send_raw_message_if` says whether it sent)
        state = _sockets._state(instance, _realtime.Session)
        if state is not None:
            state.sent(event)
    return result


async def _closed(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _sockets._failed(instance)


TARGETS = (
    (f"{CLASS}._handle_ws_event", _received),
    (f"{CLASS}._send_raw_message", _sent),
    (f"{CLASS}._send_raw_message_if", _sent),
    (f"{CLASS}.close", _closed),
)


def _targets(module: Any) -> list[tuple[str, Any]]:
    owner = getattr(module, CLASS, None)
    found = []
    for name, wrapper in TARGETS:
        if owner is None or not hasattr(owner, name.split(".")[1]):
            if not name.endswith("_if"):  # (`_send_raw_message_if`: newer releases only)
                log_once(f"patch:{name}", "respan_instrument: cannot follow %s in this Agents SDK", name)
            continue
        found.append((name, wrapper))
    return found


# (its module needs `websockets`: importing it here would cost every Agents app with no realtime)
_PATCH = WhenImported(MODULE, _targets, "a realtime agent's model")
apply = _PATCH.apply
remove = _PATCH.remove
