"""Lean streams: the SDK's own stream, tapped at its server-sent events.

A call with no span to keep current needs nothing from a stream while it runs but the data of
each event, so the user gets the SDK's `Stream` itself: no proxy, no Python frame of ours between
their loop and the SDK. We wrap the SDK's `_iter_events` (one generator step a chunk, which keeps
each event's JSON text and arrival time, and drops the injected usage chunk) and the HTTP
response's `close()` (which the SDK, the `.stream()` helpers and the user's `close()` all reach).
The worker reads the kept JSON into the log (record/replay.py).
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from ..record.replay import Tapped
from .stream import _IN_STREAM, finalizer_failed, report_close

# Events a lean stream keeps as text before they are read on the way (on the caller's thread,
# which costs the caller a little per event): a stream of 100k chunks would otherwise hold
# some 25 MB of JSON.
FOLD_AT = 4096


class StreamSink(Protocol):
    """What a tapped stream reports to (see _patch.Call)."""

    def finish_tapped(self, tapped: Tapped, error: BaseException | None, cut_short: bool) -> None: ...

    def fold_tapped(self, tapped: Tapped) -> None: ...


class _Tap:
    __slots__ = ("sink", "tapped", "hide", "errors", "reader")

    def __init__(self, sink: StreamSink, hide: bool, errors: bool) -> None:
        self.sink: StreamSink | None = sink
        self.tapped = Tapped()
        self.hide = hide
        self.errors = errors  # the SDK raises on an event with a top-level "error" (chat, completions)
        # our event generator once the SDK starts reading, weakly: its frame refers to us, and
        # the SDK's own generator must be able to free it (which ends the call) when it ends
        self.reader: Any = None

    def closed(self) -> None:
        """The HTTP response was closed. From inside our own reading (the HTTP library closes
        a response it has read to the end, or failed to read) the reader ends the call itself,
        knowing whether it ended or failed; from anywhere else (`close()`, the SDK after
        `[DONE]`, a helper, collection) this is the end."""
        reader = self.reader() if self.reader is not None else None
        if reader is not None and (
            getattr(reader, "gi_running", False) or getattr(reader, "ag_running", False)
        ):
            return
        self.finish(None)

    def fold(self) -> None:
        """A long stream: have what it kept read now (never into the user's loop)."""
        sink = self.sink
        if sink is None:
            return
        try:
            sink.fold_tapped(self.tapped)
        except Exception as exc:  # noqa: BLE001 - the log goes out with what there is
            del self.tapped.data[:]
            del self.tapped.times[:]
            _IN_STREAM.swallow(exc)

    def finish(self, error: BaseException | None) -> None:
        """End the call once: on exhaustion, error, close of the response, or collection."""
        sink, self.sink = self.sink, None
        if sink is None:
            return
        self.reader = None
        tapped = self.tapped
        data = tapped.data
        # the SDK stops reading at [DONE] (1.x reads on to the end): then nothing was cut short
        cut_short = (
            error is None and not tapped.exhausted and not any(d.startswith("[DONE]") for d in data[-2:])
        )
        try:
            sink.finish_tapped(tapped, error, cut_short)
        except Exception as exc:  # noqa: BLE001 - never into the user's loop or close()
            _IN_STREAM.swallow(exc)


def _error_event(data: str) -> bool:
    """An event the SDK raises `APIError` on (checked only when `"error"` appears in it).

    Where the SDK has no `finally` of its own (1.x), the frame holding our generator lives on in
    the traceback of the error it raises: the call has to end before that."""
    try:
        event = json.loads(data)
    except ValueError:
        return False
    return isinstance(event, dict) and bool(event.get("error"))


def _usage_only(data: str) -> bool:
    """The usage-only chunk `include_usage` adds: no choices, usage set (checked once a stream)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    return isinstance(chunk, dict) and not chunk.get("choices") and isinstance(chunk.get("usage"), dict)


def _events(tap: _Tap, original: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """The SDK's events, kept as they pass (`_aevents` is its async twin: a per-event method
    both could share would cost a call per chunk on the path this exists to keep short)."""
    tapped = tap.tapped
    kept = tapped.data
    keep = kept.append
    fold_at = FOLD_AT
    mark = tapped.times.append
    hide = tap.hide
    errors = tap.errors
    now = time.time_ns
    try:
        for sse in original():
            try:
                data = sse.data
                mark(now())
                keep(data)
                if len(kept) >= fold_at:
                    tap.fold()
                if errors and '"error"' in data and _error_event(data):
                    tap.finish(None)  # the SDK raises on it: the call ends here (the worker reads why)
                if hide and ('"usage":{' in data or '"usage": {' in data) and _usage_only(data):
                    continue  # ours: the user sees exactly the chunks of an uninstrumented client
            except Exception as exc:  # noqa: BLE001 - a bug of ours: the user still gets the event
                hide = False
                _IN_STREAM.swallow(exc)
            yield sse
    except GeneratorExit:  # the SDK's generator was closed or collected
        try:
            tap.finish(None)
        except Exception as exc:  # noqa: BLE001 - perhaps in the collector: see finalizer_failed
            finalizer_failed("finishing a collected stream", exc)
        raise
    except Exception as exc:
        tap.finish(exc)
        raise
    except BaseException:  # KeyboardInterrupt and the like: the user stopped reading
        tap.finish(None)
        raise
    tapped.exhausted = True
    tap.finish(None)


async def _aevents(tap: _Tap, original: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
    tapped = tap.tapped
    kept = tapped.data
    keep = kept.append
    fold_at = FOLD_AT
    mark = tapped.times.append
    hide = tap.hide
    errors = tap.errors
    now = time.time_ns
    try:
        async for sse in original():
            try:
                data = sse.data
                mark(now())
                keep(data)
                if len(kept) >= fold_at:
                    tap.fold()
                if errors and '"error"' in data and _error_event(data):
                    tap.finish(None)  # the SDK raises on it: the call ends here (the worker reads why)
                if hide and ('"usage":{' in data or '"usage": {' in data) and _usage_only(data):
                    continue  # ours: the user sees exactly the chunks of an uninstrumented client
            except Exception as exc:  # noqa: BLE001 - a bug of ours: the user still gets the event
                hide = False
                _IN_STREAM.swallow(exc)
            yield sse
    except GeneratorExit:
        try:
            tap.finish(None)
        except Exception as exc:  # noqa: BLE001 - perhaps in the collector: see finalizer_failed
            finalizer_failed("finishing a collected stream", exc)
        raise
    except Exception as exc:
        tap.finish(exc)
        raise
    except BaseException:  # cancellation: the caller stopped reading
        tap.finish(None)
        raise
    tapped.exhausted = True
    tap.finish(None)


_readers: dict[type, bool] = {}


def _reads_events(kind: type) -> bool:
    """Does this stream class read its events through `_iter_events()`, as the SDK's `Stream`
    and `AsyncStream` do in every major we support? (Else the usage chunk we ask for could
    reach the user: such a stream goes through the proxy.)"""
    found = _readers.get(kind)
    if found is None:
        generator = getattr(kind, "__stream__", None)
        code = getattr(generator, "__code__", None)
        found = (
            callable(getattr(kind, "_iter_events", None))
            and code is not None
            and "_iter_events" in code.co_names
        )
        if not found and code is not None and {"super", "__stream__"} <= set(code.co_names):
            # a subclass that reads its base's events and yields them as they come (the hosted
            # Agents' event stream): as its base does
            base = next((b for b in kind.__mro__[1:] if "__stream__" in vars(b)), None)
            found = base is not None and _reads_events(base)
        _readers[kind] = found
    return found


def tap(stream: Any, sink: StreamSink, is_async: bool, hide: bool, errors: bool) -> bool:
    """Tap an SDK `Stream`/`AsyncStream`; False when it has another shape, for the proxy to take
    over."""
    response = getattr(stream, "response", None)
    if response is None or not _reads_events(type(stream)) or "_iter_events" in vars(stream):
        return False
    t = _Tap(sink, hide, errors)
    reads = _shadow(stream)
    # weakly: `start` is stored on the object it reads, which must stay out of any cycle
    reads_ref = weakref.ref(reads)
    iter_events = type(stream)._iter_events

    def start() -> Any:
        reader = (_aevents if is_async else _events)(t, lambda: iter_events(reads_ref()))
        t.reader = weakref.ref(reader)
        return reader

    report_close(response, t.closed, is_async)
    reads._iter_events = start
    reads._respan_dropped = _Dropped(t)
    return True


class _Dropped:
    """Lives as long as the object the SDK reads: a stream dropped before it was read (or
    closed, when closing its response reaches nobody) ends its call when it goes."""

    __slots__ = ("tap",)

    def __init__(self, tap: _Tap) -> None:
        self.tap = tap

    def __del__(self) -> None:
        try:
            self.tap.finish(None)
        except Exception as exc:  # noqa: BLE001 - see finalizer_failed
            finalizer_failed("finishing a dropped stream", exc)


def _shadow(stream: Any) -> Any:
    """The object the SDK's generator will read: a copy of the user's `Stream` when possible.

    The SDK's generator refers to the stream it reads, and the stream to its generator: a
    stream the user drops after `break`, without `close()`, would wait in that cycle for the
    garbage collector, and its log with it. A generator reading a copy (same response, same
    client, same decoder) leaves the user's object out of any cycle: when they drop it, the
    generator ends at once, and so does the call (on 3.x the SDK then closes the response, as
    it always does when its generator ends).
    """
    kind = type(stream)
    if getattr(kind, "__stream__", None) is None or not _unstarted(getattr(stream, "_iterator", None)):
        return stream  # the generator stays the SDK's own: it ends with the cycle
    shadow = object.__new__(kind)
    shadow.__dict__.update(vars(stream))
    shadow._iterator = None
    stream._iterator = shadow.__stream__()
    return shadow


def _unstarted(generator: Any) -> bool:
    """A generator that has not run yet: neither running nor suspended, and not closed (its
    frame's last instruction is no test: 0 on 3.11 and 3.12, 2 on 3.13; async generators say
    whether they are suspended from 3.12 on)."""
    frame = getattr(generator, "gi_frame", None) or getattr(generator, "ag_frame", None)
    if frame is None:
        return False
    for prefix in ("gi", "ag"):
        suspended = getattr(generator, f"{prefix}_suspended", None)
        if suspended is not None:
            return not suspended and not getattr(generator, f"{prefix}_running", False)
    return bool(frame.f_lasti <= 0)
