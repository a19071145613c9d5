"""Collector: a Respan-compatible request-log ingest server (`respan-instrument collect`, the demo)."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from . import _otlp as otlp
from ._http import BodyTooLarge, JSONHandler, LoopbackServer
from ._log_store import LogStore

__all__ = ["Collector", "CollectorRequest"]

_logger = logging.getLogger(__name__)

CREATE_PATH = "/api/request-logs/create/"
BULK_PATH = "/api/request-logs/bulk/"
HEALTH_PATHS = ("/api/health", "/api/health/")
TRACE_PATHS = otlp.TRACE_PATHS  # OTLP/HTTP: decoded into `Collector.spans`
DEFAULT_MAX_BODY = 20 * 1024 * 1024
DEFAULT_MAX_BULK = 500


class CollectorRequest(NamedTuple):
    """One request seen by the collector; ``status`` 0 means the connection was dropped."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class _BadRequest(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _model_error(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f"Invalid data. Expected a dictionary, but got {type(row).__name__}."
    model = row.get("model")
    if model is None or model == "":
        return "This field is required."
    if not isinstance(model, str):
        return "Not a valid string."
    return None


class _CollectorHandler(JSONHandler):
    collector: Collector

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.collector._record(CollectorRequest(self._path, self._hdrs, self._raw, status))
        if isinstance(payload, (bytes, str)):
            data = payload.encode("utf-8") if isinstance(payload, str) else payload
            self.send_bytes(status, data, "text/plain; charset=utf-8", headers)
        else:
            self.send_json(status, payload, headers)

    def _handle(self) -> None:
        self._path = urlsplit(self.path).path
        self._hdrs = self.headers_dict()
        self._raw = b""
        too_large = False
        try:
            self._raw = self.read_body(self.collector.max_body_bytes)
        except BodyTooLarge:
            too_large = True
        except (ValueError, OSError):
            self.abort()
            return
        if self._path in HEALTH_PATHS:
            if self.command == "GET":
                self._reply(200, {"ok": True})
            else:
                self._reply(405, _not_allowed(self))
            return
        if self._inject_fault():
            return
        if too_large:
            self.close_connection = True
            self._reply(413, {"detail": "Request body is too large."})
            return
        try:
            self._route()
        except _BadRequest as exc:
            self._reply(exc.status, exc.payload)

    def _inject_fault(self) -> bool:
        """True when a subclass answered (or dropped) this ingest request itself: the tests'
        failure injection (tests/faulty_collector.py), a benchmark's rate limit. Never here."""
        return False

    def _route(self) -> None:
        if self._path in TRACE_PATHS:
            self._traces()
            return
        if self._path not in (CREATE_PATH, BULK_PATH):
            raise _BadRequest(404, {"detail": "Not found."})
        if not self.collector._authorized(self._hdrs.get("authorization")):
            raise _BadRequest(401, {"detail": "Invalid API key"})
        if self.command != "POST":
            raise _BadRequest(405, _not_allowed(self))
        body = self._json_body()
        if not isinstance(body, dict):
            kind = type(body).__name__
            raise _BadRequest(
                400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
            )
        if self._path == CREATE_PATH:
            self._create(body)
        else:
            self._bulk(body)

    def _traces(self) -> None:
        if not self.collector._authorized(self._hdrs.get("authorization")):
            raise _BadRequest(401, {"detail": "Invalid API key"})
        if self.command != "POST":
            raise _BadRequest(405, _not_allowed(self))
        content_type = self._hdrs.get("content-type", "")
        try:
            spans = otlp.decode(self._raw, content_type)
        except ValueError as exc:
            raise _BadRequest(400, {"detail": str(exc)}) from exc
        self.collector._accept_spans(spans)
        data, kind = otlp.answer(content_type)
        self.collector._record(CollectorRequest(self._path, self._hdrs, self._raw, 200))
        self.send_bytes(200, data, kind)

    def _json_body(self) -> Any:
        encoding = self._hdrs.get("content-encoding", "identity").strip().lower()
        data = self._raw
        if encoding in ("gzip", "deflate"):
            limit = self.collector.max_body_bytes
            try:
                data = zlib.decompressobj(47).decompress(self._raw, limit + 1)
            except zlib.error as exc:
                raise _BadRequest(400, {"detail": f"Malformed {encoding} body: {exc}"}) from exc
            if len(data) > limit:
                raise _BadRequest(413, {"detail": "Request body is too large."})
        elif encoding not in ("", "identity"):
            raise _BadRequest(415, {"detail": f'Unsupported content encoding "{encoding}".'})
        try:
            return _strict_json(data)
        except ValueError as exc:
            raise _BadRequest(400, {"detail": f"JSON parse error - {exc}"}) from exc

    def _create(self, body: dict[str, Any]) -> None:
        error = _model_error(body)
        if error is not None:
            raise _BadRequest(400, {"model": [error]})
        log_id, received_at = self.collector._accept(body)
        self._reply(201, {"id": log_id, "model": body["model"], "received_at": received_at})

    def _bulk(self, body: dict[str, Any]) -> None:
        logs = body.get("logs")
        if logs is None:
            raise _BadRequest(400, {"logs": ["This field is required."]})
        if not isinstance(logs, list):
            raise _BadRequest(
                400, {"logs": [f'Expected a list of items but got type "{type(logs).__name__}".']}
            )
        limit = self.collector.max_bulk
        if len(logs) > limit:
            raise _BadRequest(400, {"logs": [f"Ensure this field has no more than {limit} elements."]})
        errors: list[dict[str, Any]] = []
        ids: list[str] = []
        for index, row in enumerate(logs):
            error = _model_error(row)
            if error is not None:
                errors.append(
                    {"index": index, "error": error if error.startswith("Invalid") else f"model: {error}"}
                )
            else:
                ids.append(self.collector._accept(row)[0])
        self._reply(
            200, {"success_count": len(ids), "error_count": len(errors), "errors": errors, "ids": ids}
        )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _strict_json(data: bytes) -> Any:
    """Parse as a strict JSON server does: UTF-8 only, no NaN / Infinity tokens,
    no lone surrogates, escaped or not. Python's own json accepts all three."""
    value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    if b"\\ud" in data or b"\\uD" in data:  # escaped surrogates: only whole pairs are text
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone surrogate in a string") from None
    return value


def _not_allowed(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    return {"detail": f'Method "{handler.command}" not allowed.'}


class Collector(LoopbackServer):
    """Respan-compatible ingest server on 127.0.0.1; set ``RESPAN_BASE_URL`` to ``collector.base_url``.

    ``api_key`` None accepts any (or no) key; ``db_path`` persists accepted logs to SQLite;
    ``on_log`` is called once per accepted log.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | os.PathLike[str] | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_bulk: int = DEFAULT_MAX_BULK,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.db_path = db_path
        self.on_log = on_log
        self.max_body_bytes = max_body_bytes
        self.max_bulk = max_bulk
        self._cond = threading.Condition()
        self._logs: list[dict[str, Any]] = []
        self._spans: list[dict[str, Any]] = []
        self._requests: list[CollectorRequest] = []
        self._store: LogStore | None = None

    # -- lifecycle hooks ---------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        class Handler(_CollectorHandler):
            pass

        Handler.collector = self
        return Handler

    def _on_start(self) -> None:
        if self.db_path is not None and self._store is None:
            self._store = LogStore(self.db_path)

    def _on_stop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    # -- records -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """What a client sets as ``RESPAN_BASE_URL`` (``{url}/api``)."""
        return f"{self.url}/api"

    @property
    def logs(self) -> list[dict[str, Any]]:
        """Snapshot of every accepted log, in arrival order."""
        with self._cond:
            return list(self._logs)

    @property
    def requests(self) -> list[CollectorRequest]:
        """Snapshot of every request received (including rejected and failed ones)."""
        with self._cond:
            return list(self._requests)

    @property
    def spans(self) -> list[dict[str, Any]]:
        """Snapshot of every span received over OTLP/HTTP, decoded (see `_otlp.decode`)."""
        with self._cond:
            return list(self._spans)

    def wait_for_spans(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` spans were accepted; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._spans) >= n, timeout)

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` logs were accepted; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._logs) >= n, timeout)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` requests (any outcome) were received; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= n, timeout)

    def clear(self) -> None:
        """Forget recorded logs, spans and requests."""
        with self._cond:
            self._logs.clear()
            self._spans.clear()
            self._requests.clear()

    # -- internals used by the handler ---------------------------------------------
    def _authorized(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    def _record(self, request: CollectorRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    def _accept_spans(self, spans: list[dict[str, Any]]) -> None:
        with self._cond:
            self._spans.extend(spans)
            self._cond.notify_all()

    def _accept(self, log: dict[str, Any]) -> tuple[str, str]:
        log_id = str(uuid.uuid4())
        received_at = datetime.now(timezone.utc).isoformat()
        store = self._store
        if store is not None:
            try:
                store.insert(log_id, received_at, log)
            except Exception:  # noqa: BLE001 - persistence must not break ingest
                _logger.exception("collector: failed to persist log %s", log_id)
        if self.on_log is not None:
            try:
                self.on_log(log)
            except Exception:  # noqa: BLE001 - a faulty callback must not break ingest
                _logger.exception("collector: on_log callback failed")
        with self._cond:
            self._logs.append(log)
            self._cond.notify_all()
        return log_id, received_at
