"""Streams that finish their call exactly once, however the stream ends.

Two ways, both ending the call on exhaustion, error, `close()`, `with`-exit, a close of the HTTP
response itself (the `.stream()` helpers close it directly), or when the stream is dropped:

- a call with a span gets a proxy that stands in for the SDK's `Stream` / `AsyncStream` (so
  `isinstance` holds and every attribute is the SDK's own), keeps the span current while the
  user iterates and feeds each item to a sans-I/O accumulator;
- a lean call (no span, no metrics) gets the SDK's own stream, tapped at its server-sent events
  (`tap()`): their JSON text is kept and read later by the worker.

Finalisers never touch the SDK's connection: they only end the span and queue the log.
"""

from __future__ import annotations

import json
import time
import weakref
from array import array
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

import wrapt

from ._errors import contained, report, strict

# The C proxy itself. `wrapt.ObjectProxy` and `wrapt.wrappers.ObjectProxy` are Python layers
# over it: every `_self_` attribute set went through a Python `__setattr__` (16 a stream).
_Proxy: Any = getattr(wrapt, "BaseObjectProxy", None)
if _Proxy is None or _Proxy.__module__ != "_wrappers":  # pragma: no cover - no C extension
    try:
        from wrapt._wrappers import ObjectProxy as _CProxy

        _Proxy = _CProxy
    except ImportError:
        _Proxy = wrapt.ObjectProxy


_IN_STREAM = contained("following a stream")

FOLD_EVERY = 16  # chunks held before they are fed to the accumulator in one go


def _ignore(item: Any) -> bool:
    return False


# What our finalizers contained in strict mode (the suite fails a test that leaves one here).
# A finalizer cannot raise to anyone: Python would print "Exception ignored in ..." on stderr.
finalizer_failures: list[str] = []


def finalizer_failed(where: str, exc: Exception) -> None:
    """The `except` of every finalizer of ours (`__del__`, a generator closed by the collector):
    logged once like any internal error, and counted in strict mode, never raised."""
    try:
        report(where, exc)
        if strict():
            finalizer_failures.append(f"{where}: {type(exc).__qualname__}")
    except Exception:  # noqa: BLE001, S110 - logging itself failed: nowhere left to say it
        pass


class OnDrop:
    """Runs `callback` when it is collected: kept in the `__dict__` of the object whose
    lifetime it follows."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def __del__(self) -> None:
        try:
            self.callback()
        except Exception as exc:  # noqa: BLE001 - see finalizer_failed
            finalizer_failed("finishing a dropped response", exc)


class Finisher(Protocol):
    """What a proxy reports to: one call in flight (see _patch.Call)."""

    def first_output(self, when_ns: int) -> None: ...

    def enter(self) -> object: ...

    def leave(self, token: object) -> None: ...

    def finish_stream(self, error: BaseException | None, cut_short: bool) -> None: ...


class ResponseProxy(_Proxy):  # type: ignore[misc]
    """The HTTP response of a stream; tells us when someone closes it before the end."""

    def __init__(self, response: Any, on_close: Callable[[], None]) -> None:
        super().__init__(response)
        self._self_on_close = on_close

    def close(self) -> None:
        self._self_on_close()
        self.__wrapped__.close()

    async def aclose(self) -> None:
        self._self_on_close()
        await self.__wrapped__.aclose()


class _Base(_Proxy):  # type: ignore[misc]
    _self_done = True  # until __init__ is through: a proxy that failed to build finishes nothing

    def __init__(
        self, stream: Any, call: Finisher, add: Callable[[Any], bool], hide: Callable[[Any], bool] | None
    ) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_add = add
        self._self_hide = hide
        self._self_next: Callable[[], Any] = getattr(stream, "__next__", None) or stream.__anext__
        self._self_fresh = True  # no output received yet: the per-chunk path checks only this
        self._self_response: Any = None
        self._self_token: object = None
        self._self_held: list[Any] = []  # chunks received since the last fold
        self._self_done = False

    def _self_finish(self, error: BaseException | None, cut_short: bool) -> None:
        """End the call once; never raises into the user's loop, close() or `with` exit."""
        if self._self_done:
            return
        self._self_done = True
        try:
            if self._self_held:
                self._self_fold()
        except Exception as exc:  # noqa: BLE001 - the log goes out with what was accumulated
            _IN_STREAM.swallow(exc)
        try:
            if self._self_token is not None:
                self._self_call.leave(self._self_token)
                self._self_token = None
            self._self_call.finish_stream(error, cut_short)
        except Exception as exc:  # noqa: BLE001
            _IN_STREAM.swallow(exc)

    def _self_cut(self) -> None:
        self._self_finish(None, True)

    def _self_take(self, item: Any) -> bool:
        """Take one item; False when the item is ours to hide (the injected usage chunk).

        Until the first output (for time to first token) each item is fed to the accumulator
        at once; after it, items are held and fed `FOLD_EVERY` at a time. Between two chunks
        the SDK's parsing evicts our code from the CPU caches, so feeding them one by one cost
        three times as much as the same work done in a batch (measured).
        """
        try:
            if self._self_fresh:
                if self._self_add(item):
                    self._self_first_output()
            else:
                held = self._self_held
                held.append(item)
                if len(held) >= FOLD_EVERY:
                    self._self_fold()
            hide = self._self_hide
            return hide is None or not hide(item)
        except Exception as exc:  # noqa: BLE001 - ours: the user gets the item; we stop accumulating
            self._self_add = _ignore
            self._self_held = []
            _IN_STREAM.swallow(exc)
            return True

    def _self_fold(self) -> None:
        held, self._self_held = self._self_held, []
        add = self._self_add
        for item in held:
            add(item)

    def _self_start(self) -> None:
        """First item: from now on our span is the current one in the consumer's context, so
        spans the user's loop body creates are its children, until the stream ends."""
        if self._self_token is None and not self._self_done:
            self._self_token = self._self_call.enter()

    def _self_first_output(self) -> None:
        self._self_fresh = False
        self._self_call.first_output(time.time_ns())

    @property
    def response(self) -> Any:
        proxy = self._self_response
        if proxy is None:
            proxy = self._self_response = ResponseProxy(self.__wrapped__.response, self._self_cut)
        return proxy

    def __del__(self) -> None:
        # dropped unfinished: log what was received; never do I/O on the SDK's connection here
        try:
            if not self._self_done:
                self._self_finish(None, True)
        except Exception as exc:  # noqa: BLE001 - see finalizer_failed
            finalizer_failed("finishing a dropped stream", exc)


class TracedStream(_Base):
    """Proxy for `openai.Stream`."""

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        if self._self_fresh:
            self._self_start()
        while True:
            try:
                item = self._self_next()
            except StopIteration:
                self._self_finish(None, False)
                raise
            except Exception as exc:
                self._self_finish(exc, False)
                raise
            except BaseException:  # KeyboardInterrupt and the like: the user stopped reading
                self._self_cut()
                raise
            if self._self_take(item):
                return item

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        self._self_cut()
        return self.__wrapped__.__exit__(*exc_info)

    def close(self) -> None:
        self._self_cut()
        self.__wrapped__.close()


class AsyncTracedStream(_Base):
    """Proxy for `openai.AsyncStream`."""

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        if self._self_fresh:
            self._self_start()
        while True:
            try:
                item = await self._self_next()
            except StopAsyncIteration:
                self._self_finish(None, False)
                raise
            except Exception as exc:
                self._self_finish(exc, False)
                raise
            except BaseException:  # cancellation: the caller stopped reading
                self._self_cut()
                raise
            if self._self_take(item):
                return item

    async def __aenter__(self) -> AsyncTracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        self._self_cut()
        return await self.__wrapped__.__aexit__(*exc_info)

    async def close(self) -> None:
        self._self_cut()
        await self.__wrapped__.close()

    aclose = close


# ---- lean streams: the SDK's own stream, tapped at its server-sent events ------------------
#
# A call with no span to keep current needs nothing from a stream while it runs but the data
# of each event, so the user gets the SDK's `Stream` itself: no proxy, no Python frame of ours
# between their loop and the SDK. We wrap the SDK's `_iter_events` (one generator step a
# chunk, which keeps each event's JSON text and arrival time, and drops the injected usage
# chunk) and the HTTP response's byte stream (whose `close()` the SDK, the `.stream()` helpers
# and the user's `close()` all reach). The worker parses the kept JSON into the log.


# Events a lean stream keeps as text before they are read on the way (on the caller's thread,
# about 3 µs each): a stream of 100k chunks would otherwise hold some 25 MB of JSON.
FOLD_AT = 4096


class Tapped:
    """What a lean stream handed over: each event's data and arrival time, in order (those not
    read on the way yet), and the reader of those that were."""

    __slots__ = ("data", "times", "exhausted", "reader")

    def __init__(self) -> None:
        self.data: list[str] = []
        self.times = array("q")
        self.exhausted = False
        self.reader: Any = None


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
        found = _readers[kind] = (
            callable(getattr(kind, "_iter_events", None))
            and code is not None
            and "_iter_events" in code.co_names
        )
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


def report_close(response: Any, on_close: Callable[[], None], is_async: bool) -> None:
    """Have the HTTP response's own `close`/`aclose` call `on_close` after closing it.

    For a tapped stream they end the call: the SDK after `[DONE]`, the `.stream()` helpers at
    the end of their `with` block, the user's `close()`, and the HTTP library itself when it
    has read the body to the end (or failed to) all come through them.
    (Wrapping the response's byte stream instead would miss a body read before the SDK saw
    it, as in-memory transports do: such a response is closed already.)"""
    kind = type(response)
    ref = weakref.ref(response)  # (the response keeps this function: no cycle through it)
    if is_async:

        async def aclose() -> None:
            try:
                target = ref()
                if target is not None:
                    await kind.aclose(target)
            finally:
                on_close()

        response.aclose = aclose
    else:

        def close() -> None:
            try:
                target = ref()
                if target is not None:
                    kind.close(target)
            finally:
                on_close()

        response.close = close


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
    """A generator that has not run yet (its frame's last instruction: -1 before 3.11, 0 since)."""
    frame = getattr(generator, "gi_frame", None) or getattr(generator, "ag_frame", None)
    return frame is not None and frame.f_lasti <= 0
