"""Streams that finish their call exactly once, however the stream ends: exhaustion, error,
`close()`, `with`-exit, a close of the HTTP response itself (the `.stream()` helpers close it
directly), or when the stream is dropped.

A call with a span gets a proxy that stands in for the SDK's `Stream` / `AsyncStream` (so
`isinstance` holds and every attribute is the SDK's own), keeps the span current while the user
iterates and feeds each item to the endpoint's sans-I/O accumulator. A lean call (no span, no
metrics) gets the SDK's own stream, tapped instead (see tap.py).

Finalisers never touch the SDK's connection: they only end the span and queue the log.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import wrapt

from .._errors import contained, report

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


def finalizer_failed(where: str, exc: Exception) -> None:
    """The `except` of every finalizer of ours (`__del__`, a generator closed by the collector):
    reported like any internal error, never raised (Python would print "Exception ignored in
    ..." on stderr)."""
    try:
        report(where, exc)
    except Exception:  # noqa: BLE001, S110 - logging itself failed: nowhere left to say it
        pass


def weakly(owner: Any, method: str) -> Callable[[], None]:
    """A callback that calls `owner.<method>()` while `owner` lives: kept by an object `owner`
    keeps (its HTTP response), it makes no cycle."""
    ref = weakref.ref(owner)

    def call() -> None:
        target = ref()
        if target is not None:
            getattr(target, method)()

    return call


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


def report_close(response: Any, on_close: Callable[[], None], is_async: bool, name: str = "") -> None:
    """Have the object's own close (`close`, or `aclose` when async; `name` when given) call
    `on_close` after closing it, through an attribute of the instance: its type stays its own.

    For a tapped stream the HTTP response's close ends the call: the SDK after `[DONE]`, the
    `.stream()` helpers at the end of their `with` block, the user's `close()`, and the HTTP
    library itself when it has read the body to the end (or failed to) all come through it.
    (Wrapping the response's byte stream instead would miss a body read before the SDK saw
    it, as in-memory transports do: such a response is closed already.)"""
    name = name or ("aclose" if is_async else "close")
    closer = getattr(type(response), name)
    ref = weakref.ref(response)  # (the response keeps this function: no cycle through it)
    if is_async:

        async def aclose() -> None:
            try:
                target = ref()
                if target is not None:
                    await closer(target)
            finally:
                on_close()

        setattr(response, name, aclose)
    else:

        def close() -> None:
            try:
                target = ref()
                if target is not None:
                    closer(target)
            finally:
                on_close()

        setattr(response, name, close)


class _Base(_Proxy):  # type: ignore[misc]
    _self_async = False
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
        self._self_watched = False  # the close of its HTTP response reaches us
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
        """The SDK's own HTTP response (its type is checked, by the SDK's helpers too), whose
        close, by a `.stream()` helper or the app before the end, ends the call cut short."""
        response = self.__wrapped__.response
        if not self._self_watched:
            self._self_watched = True
            report_close(response, weakly(self, "_self_closed"), self._self_async)
        return response

    def _self_closed(self) -> None:
        # The SDK's generator closes the response as it reads the end (and the HTTP library
        # as its own generators end after it): no cut, our `__next__` sees the end next. A close
        # while that generator waits between items is one.
        reader = getattr(self.__wrapped__, "_iterator", None)
        if reader is None:
            self._self_cut()
        elif getattr(reader, "gi_frame", None) or getattr(reader, "ag_frame", None):
            if not (getattr(reader, "gi_running", False) or getattr(reader, "ag_running", False)):
                self._self_cut()

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

    _self_async = True

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
