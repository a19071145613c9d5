"""Shared plumbing for the loopback HTTP servers (server lifecycle, body I/O, JSON replies)."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["BodyTooLarge", "JSONHandler", "LoopbackServer"]

_S = TypeVar("_S", bound="LoopbackServer")

_READ_BLOCK = 1 << 16

_logger = logging.getLogger("respan_instrument.local")


class BodyTooLarge(Exception):
    """Raised by :meth:`JSONHandler.read_body` when a request body exceeds the limit."""


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks open connections so ``stop()`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._conns_lock:
                self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        if isinstance(request, socket.socket):
            with self._conns_lock:
                self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that vanish (resets, broken pipes); log anything else."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        _logger.error("error while serving %s", client_address, exc_info=exc)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LoopbackServer:
    """Base class: an HTTP server on a daemon thread with start/stop/url/context manager."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle_lock = threading.Lock()

    # -- hooks for subclasses -------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _on_start(self) -> None:
        """Called before the server starts accepting connections."""

    def _on_stop(self) -> None:
        """Called after the server stopped accepting connections."""

    # -- lifecycle -------------------------------------------------------------
    def start(self: _S) -> _S:
        """Bind and serve on a daemon thread; returns ``self``. No-op when running."""
        with self._lifecycle_lock:
            if self._server is not None:
                return self
            self._on_start()
            server = _Server((self._host, self._requested_port), self._handler_class())
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}-{server.server_address[1]}",
                daemon=True,
            )
            self._server, self._thread = server, thread
            thread.start()
            return self

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port. Idempotent."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
            if server is None:
                return
            server.shutdown()
            server.close_connections()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5.0)
            self._on_stop()

    @property
    def running(self) -> bool:
        """Whether the server is currently serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound TCP port (raises ``RuntimeError`` when not started)."""
        server = self._server
        if server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server, without a trailing slash."""
        return f"http://{self._host}:{self.port}"

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class JSONHandler(BaseHTTPRequestHandler):
    """Request handler base with HTTP/1.1 keep-alive, JSON replies and chunked streaming."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "respan-local/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log."""

    def headers_dict(self) -> dict[str, str]:
        """Request headers with lower-cased names (repeated headers joined by ``, ``)."""
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = f"{out[key]}, {value}" if key in out else value
        return out

    def read_body(self, limit: int | None = None) -> bytes:
        """Read the request body (Content-Length or chunked); raise BodyTooLarge past ``limit``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            self._drain(length, cap=4 * limit)
            raise BodyTooLarge(str(length))
        return self.rfile.read(length) if length > 0 else b""

    def _drain(self, length: int, cap: int) -> None:
        if length > cap:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            block = self.rfile.read(min(_READ_BLOCK, remaining))
            if not block:
                break
            remaining -= len(block)

    def _read_chunked(self, limit: int | None) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            total += size
            chunk = self.rfile.read(size)
            self.rfile.readline(8)
            if limit is not None and total > limit:
                self.close_connection = True
                raise BodyTooLarge(str(total))
            parts.append(chunk)
        return b"".join(parts)

    def send_bytes(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send ``payload`` serialized as JSON."""
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_bytes(status, data, "application/json", headers)

    def start_chunked(self, status: int, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        """Send headers for a chunked (incrementally flushed) response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        """Write and flush one chunk of a chunked response."""
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        """Terminate a chunked response."""
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort(self) -> None:
        """Close the connection abruptly, without (finishing) a response."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
