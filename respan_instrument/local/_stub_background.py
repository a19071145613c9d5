"""Responses background mode for the stub: queued responses polled, streamed again, cancelled."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ._stub_common import JSON, CallSpec, Reply, SSEvent
from ._stub_responses import response_stream

__all__ = ["BackgroundResponses"]

_FAILING_MODEL = "fail-bg"
_INCOMPLETE_MODEL = "incomplete-bg"


@dataclass
class _Job:
    """One background response: every event it will emit, and how many polls still see it running."""

    events: list[JSON]
    polls_left: int
    cancelled: bool = False


def _plan_events(spec: CallSpec) -> list[JSON]:
    """The full event list, fixed at creation so a poll, a stream and a resumed stream agree."""
    events = [dict(e.data) for e in response_stream(spec) if isinstance(e.data, dict)]
    for event in events:
        if isinstance(event.get("response"), dict):
            event["response"] = {**event["response"], "background": True}
    events[0]["response"]["status"] = "queued"
    if spec.model == _FAILING_MODEL:
        final = events[-1]["response"]
        error = {"code": "server_error", "message": "The background response failed (injected by the stub)."}
        failed = {**final, "status": "failed", "output": [], "usage": None, "error": error}
        events = [*events[:2], {"type": "response.failed", "sequence_number": 2, "response": failed}]
    elif spec.model == _INCOMPLETE_MODEL:
        final = events[-1]["response"]
        final.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
        events[-1]["type"] = "response.incomplete"
    return events


class BackgroundResponses:
    """Per-id state of background responses, shared by the stub's request threads."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def create(self, spec: CallSpec, headers: Mapping[str, str]) -> Reply:
        """``POST /responses`` with ``background: true``: a queued object, or the whole event stream."""
        try:
            polls = max(0, int(headers.get("x-stub-polls", "1")))
        except ValueError:
            polls = 1
        events = _plan_events(spec)
        rid = str(events[0]["response"]["id"])
        with self._lock:
            self._jobs[rid] = _Job(events, polls)
        if spec.body.get("stream") is True:
            return Reply(events=_sse(events))
        return Reply(json=copy.deepcopy(events[0]["response"]))

    def retrieve(self, rid: str, query: Mapping[str, str]) -> Reply | None:
        """``GET /responses/{id}``: in progress for the first polls, then final; ``stream=true`` resumes."""
        with self._lock:
            job = self._jobs.get(rid)
            if job is None:
                return None
            if query.get("stream") == "true":
                try:
                    after = int(query.get("starting_after", "-1"))
                except ValueError:
                    after = -1
                rest = [e for e in job.events if int(e["sequence_number"]) > after]
                return Reply(events=_sse(rest))
            if job.cancelled:
                return Reply(json=self._cancelled(job))
            if job.polls_left > 0:
                job.polls_left -= 1
                return Reply(json=copy.deepcopy(job.events[1]["response"]))
            return Reply(json=copy.deepcopy(job.events[-1]["response"]))

    def cancel(self, rid: str) -> Reply | None:
        """``POST /responses/{id}/cancel``: the response ends ``cancelled`` without output."""
        with self._lock:
            job = self._jobs.get(rid)
            if job is None:
                return None
            job.cancelled = True
            return Reply(json=self._cancelled(job))

    @staticmethod
    def _cancelled(job: _Job) -> JSON:
        final: JSON = copy.deepcopy(job.events[-1]["response"])
        final.update(status="cancelled", output=[], usage=None)
        return final


def _sse(events: list[JSON]) -> Iterator[SSEvent]:
    for event in events:
        yield SSEvent(copy.deepcopy(event), str(event["type"]), "delta" in event)
