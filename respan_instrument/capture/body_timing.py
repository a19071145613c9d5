"""Time to first output for an event stream the SDK hands over whole.

`audio.speech.create(stream_format="sse")` answers server-sent audio deltas, yet the SDK reads
the body to its end before it returns (or, through `with_streaming_response`, lets the app read
the bytes). Its first delta is only seen as the bytes arrive: we wrap the SDK's `_send_request`
(openai 2.x and 3.x; 1.x has no such seam, and there the log has no `ttft`) so the HTTP
response's byte stream notes when the first chunk carrying output arrives and keeps the
body's last bytes (where the usage is), then read the body as the HTTP library would have.
Whatever the SDK asked (`stream`), the app gets what it would have: the same response, read or
unread, and any error of the read raised inside the SDK's own retry handling.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._errors import contained

_IN_TIMING = contained("timing an event stream's body")
TAIL = 4096  # bytes of the body's end kept: the last event (with the usage) fits
_classes: dict[str, tuple[type, type]] = {}


def _stream_classes(response: Any) -> tuple[type, type]:
    """(sync, async) byte-stream wrappers subclassing the response's own HTTP library's base
    classes, which that library checks before it iterates."""
    root = type(response).__module__.split(".")[0]
    found = _classes.get(root)
    if found is None:
        library = sys.modules[root]

        class Timed(library.SyncByteStream):  # type: ignore[name-defined,misc]
            def __init__(self, inner: Any, marker: bytes, first: Callable[[int], None]) -> None:
                self.inner, self.marker, self.first, self.tail = inner, marker, first, b""

            def __iter__(self) -> Iterator[bytes]:
                for chunk in self.inner:
                    _seen(self, chunk)
                    yield chunk

            def close(self) -> None:
                self.inner.close()

        class AsyncTimed(library.AsyncByteStream):  # type: ignore[name-defined,misc]
            def __init__(self, inner: Any, marker: bytes, first: Callable[[int], None]) -> None:
                self.inner, self.marker, self.first, self.tail = inner, marker, first, b""

            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in self.inner:
                    _seen(self, chunk)
                    yield chunk

            async def aclose(self) -> None:
                await self.inner.aclose()

        found = _classes[root] = (Timed, AsyncTimed)
    return found


def _seen(stream: Any, chunk: bytes) -> None:
    with _IN_TIMING:
        if stream.first is not None and stream.marker in chunk:
            first, stream.first = stream.first, None
            first(time.time_ns())
        stream.tail = (stream.tail + chunk)[-TAIL:]


def _timed(call: Any) -> bytes:
    """The marker of output in this call's body, when its body is an event stream the SDK
    returns whole (b"": nothing to time)."""
    if call is None or call.is_stream or not call.record.stream:
        return b""
    marker: bytes = call.endpoint.first_output_marker
    return marker


def _watch(response: Any, marker: bytes, call: Any, is_async: bool) -> None:
    with _IN_TIMING:
        sync, asynchronous = _stream_classes(response)
        response.stream = (asynchronous if is_async else sync)(response.stream, marker, call.first_output)


def sync_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], call: Any) -> Any:
    marker = _timed(call)
    if not marker:
        return wrapped(*args, **kwargs)
    read = not kwargs.get("stream")
    response = wrapped(*args, **{**kwargs, "stream": True})
    _watch(response, marker, call, False)
    if read:  # as the HTTP library's send(stream=False) does
        try:
            response.read()
        except BaseException:
            response.close()
            raise
    return response


async def async_send(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], call: Any
) -> Any:
    marker = _timed(call)
    if not marker:
        return await wrapped(*args, **kwargs)
    read = not kwargs.get("stream")
    response = await wrapped(*args, **{**kwargs, "stream": True})
    _watch(response, marker, call, True)
    if read:
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response
