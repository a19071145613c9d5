"""A lean stream's events, read as the SDK read them, through the endpoint's accumulator.

The caller's thread only kept each event's JSON text and arrival time (see capture/tap.py); the
worker reads them after the stream ended: output, usage, time to first token, and an error
event the SDK raised on becomes the call's error. A long stream's events are read on the way,
in blocks, so that what it keeps stays bounded (`fold`).
"""

from __future__ import annotations

import json
from array import array
from typing import Any, Protocol

from .._errors import contained
from ..endpoints import Endpoint
from . import fastjson

_IN_READING_STREAM = contained("reading a stream's events")


class Tapped:
    """A lean stream's events, for the worker: each event's JSON text and arrival time, in order
    (those not read on the way yet), and the reader of those that were."""

    __slots__ = ("data", "times", "exhausted", "reader")

    def __init__(self) -> None:
        self.data: list[str] = []
        self.times = array("q")
        self.exhausted = False
        self.reader: StreamReader | None = None


class Outcome(Protocol):
    """What reading a stream's events fills in: a call's record (`record.call.CallRecord`)."""

    endpoint: Endpoint
    ttft_ns: int | None
    error: BaseException | None
    cut_short: bool
    response: Any


class StreamReader:
    __slots__ = ("endpoint", "acc", "broken", "stopped", "ttft_ns", "error")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.acc: Any = endpoint.accumulator()
        self.broken = False  # past a bug of ours: the output stays as read before it
        self.stopped = False  # past an error event: the SDK raised there
        self.ttft_ns: int | None = None
        self.error: BaseException | None = None

    def feed(self, data: list[str], times: Any) -> None:
        if self.stopped:
            return
        acc = self.acc
        errors = self.endpoint.stream_errors
        run = getattr(acc, "run", None)  # the accumulator's fast path for its plain events
        events = parsed_events(data)
        end = len(events)
        index = 0
        while index < end:
            if run is not None and not self.broken:
                try:
                    index, first = run(events, index)
                except Exception as exc:  # noqa: BLE001 - log what was read before it
                    _IN_READING_STREAM.swallow(exc)
                    self.broken = True
                    continue
                if first >= 0 and self.ttft_ns is None:
                    self.ttft_ns = times[first]
                if index >= end:
                    break
            event = events[index]
            index += 1
            if type(event) is not dict:
                continue
            if errors and event.get("error"):
                self.error = self.endpoint.stream_error(event["error"])
                self.stopped = True
                return
            if self.broken:  # the usage comes last: keep it
                usage = event.get("usage") or _get_in(event, "response", "usage")
                if isinstance(usage, dict):
                    acc.usage = usage
                continue
            try:
                output = acc.add(event)
            except Exception as exc:  # noqa: BLE001 - log what was read before it
                _IN_READING_STREAM.swallow(exc)
                self.broken = True
                continue
            if output and self.ttft_ns is None:
                self.ttft_ns = times[index - 1]

    def finish(self, record: Outcome) -> None:
        if self.ttft_ns is not None:
            record.ttft_ns = self.ttft_ns
        if self.error is not None:
            record.error = self.error
            record.cut_short = False
        final = getattr(self.acc, "final", None)
        record.response = final if final is not None else self.acc


def replay(record: Outcome, tapped: Tapped) -> None:
    """The rest of a lean stream's events (all of a short one's)."""
    reader = tapped.reader if tapped.reader is not None else StreamReader(record.endpoint)
    reader.feed(tapped.data, tapped.times)
    reader.finish(record)


def fold(endpoint: Endpoint, tapped: Tapped) -> None:
    """A long lean stream: read what it kept so far and let it go (the last two events stay:
    the end of the stream looks for `[DONE]` among them)."""
    if tapped.reader is None:
        tapped.reader = StreamReader(endpoint)
    upto = len(tapped.data) - 2
    tapped.reader.feed(tapped.data[:upto], tapped.times[:upto])
    del tapped.data[:upto]
    del tapped.times[:upto]


def parsed_events(data: list[str]) -> list[Any]:
    """Each event's JSON, up to `[DONE]` (where the SDK stops); None for one that is not JSON.

    All in one `json.loads` of an array when they allow it: one C call instead of one a chunk.
    """
    end = len(data)
    for i in range(max(0, end - 3), end):
        if data[i].startswith("[DONE]"):
            end = i
            break
    joined = "[" + ",".join(data[:end]) + "]"
    events = fastjson.loads(joined)
    if events is not fastjson.DECLINED and len(events) == end:
        return events  # type: ignore[no-any-return]
    try:
        events = json.loads(joined)
        if len(events) == end:
            return events  # type: ignore[no-any-return]
    except ValueError:
        pass
    events = []
    for d in data[:end]:
        if d.startswith("[DONE]"):
            break
        events.append(_json_or_none(d))
    return events


def _json_or_none(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _get_in(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
