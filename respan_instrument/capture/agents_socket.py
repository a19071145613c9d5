"""Agents SDK model calls over the Responses WebSocket (`OpenAIResponsesWSModel`).

That model opens its websocket itself (`websockets`), not through the `openai` SDK's
`responses.connect()`, so no patch of ours sees its frames. We wrap the connection it opens
(`_open_websocket_connection`) in a proxy whose `send` and `recv` hand every frame to the same
recorder as a `responses.connect()` connection (capture/responses_socket.py): one `response`
log per response, with usage, cost and `ttft`, hung under the agent it ran for.
"""

from __future__ import annotations

import json
from typing import Any

import wrapt

from .._errors import contained, log_once
from . import responses_socket as _responses_socket
from . import sockets as _sockets
from .on_import import WhenImported

MODULE = "agents.models.openai_responses"
CLASS = "OpenAIResponsesWSModel"
NAME = f"{CLASS}._open_websocket_connection"
_IN_FRAME = contained("reading an Agents websocket frame")


class _Followed(wrapt.ObjectProxy[Any]):
    """The model's websocket connection, as the model uses it; every frame also to the recorder
    of the model that opened it."""

    def __init__(self, connection: Any, model: Any) -> None:
        super().__init__(connection)
        self._self_model = model

    def _self_state(self) -> Any:
        if not _PATCH.wanted:  # (a connection opened before uninstrument() is no longer followed)
            return None
        return _sockets._state(self._self_model, _responses_socket.ResponsesSocket)

    async def send(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        result = await self.__wrapped__.send(message, *args, **kwargs)
        with _IN_FRAME:
            if isinstance(message, (str, bytes)) and b'"response.create"' in _head(message):
                state = self._self_state()
                if state is not None:
                    state.sent(json.loads(message))
        return result

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        try:
            frame = await self.__wrapped__.recv(*args, **kwargs)
        except BaseException:
            _sockets._failed(self._self_model)
            raise
        state = self._self_state()
        if state is not None and isinstance(frame, (str, bytes)):
            state.received(frame)
        return frame

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.__wrapped__.close(*args, **kwargs)
        finally:
            _sockets._failed(self._self_model)


def _head(message: str | bytes) -> bytes:
    return (message if isinstance(message, bytes) else message.encode())[:96]


async def _opened(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    connection = await wrapped(*args, **kwargs)
    if not _PATCH.wanted:
        return connection
    with contained("following an Agents websocket"):
        return _Followed(connection, instance)
    return connection


def _targets(module: Any) -> list[tuple[str, Any]]:
    owner = getattr(module, CLASS, None)
    if owner is None:
        return []  # (older Agents SDKs have no websocket model)
    if not hasattr(owner, "_open_websocket_connection"):
        log_once(f"patch:{NAME}", "respan_instrument: cannot follow %s in this Agents SDK", NAME)
        return []
    return [(NAME, _opened)]


_PATCH = WhenImported(MODULE, _targets, "an Agents websocket model")
apply = _PATCH.apply
remove = _PATCH.remove
