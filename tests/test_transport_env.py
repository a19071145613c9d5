"""Delivery reaches Respan the way the openai SDK reaches OpenAI (proxy and CA environment), and a
slow Respan is waited for instead of being sent every log twice.

The proxy below is a loopback forward proxy that alone knows the host `respan.test`: a log sent
anywhere but through it cannot arrive. The HTTPS Collector is the loopback Collector behind a TLS
front whose certificate comes from a CA made for the test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
import trustme
from conftest import RESPAN_KEY, delivered

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub

RESPAN_HOST = "respan.test"  # reserved name: no resolver knows it, only the proxy does
ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RESPAN_TIMEOUT",
)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"})


class Seen(NamedTuple):
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.close()
        except OSError:
            pass


def _pipe(a: socket.socket, b: socket.socket, sink: list[bytes] | None = None) -> None:
    """Relay bytes both ways until either side closes, then close both; what goes a -> b is
    appended to `sink`.

    One thread does both ways and alone closes: an SSL socket closed by another thread while
    this one reads it keeps its descriptor's number inside OpenSSL, which, when the peer then
    hangs up, writes its alert through that number into whatever has it by then (once, a child
    process's stderr pipe under xdist). One thread also never reads and writes one SSL
    connection at the same time, which OpenSSL does not allow.
    """
    ways = {a: (b, sink), b: (a, None)}
    try:
        with selectors.DefaultSelector() as selector:
            for sock in ways:
                selector.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    src = key.fileobj
                    assert isinstance(src, socket.socket)
                    dst, record = ways[src]
                    data = src.recv(65536)
                    # what OpenSSL decrypted already is not seen by select()
                    while data and isinstance(src, ssl.SSLSocket) and src.pending():
                        data += src.recv(65536)
                    if not data:
                        return
                    if record is not None:
                        record.append(data)
                    dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(a, b)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.routes = routes
        self.seen: list[Seen] = []
        self.tunnelled: list[bytes] = []
        self.holding = False  # answer nothing: a Respan that never replies
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that go away mid-request are part of these tests."""


class _ProxyHandler(BaseHTTPRequestHandler):
    """Absolute-URI requests (plain HTTP through a proxy) and CONNECT tunnels (https)."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _upstream(self, host: str) -> int | None:
        return self.server.routes.get(host.lower())

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib naming
        self.server.seen.append(Seen("CONNECT", self.path, dict(self.headers.items()), b""))
        host, _, _port = self.path.rpartition(":")
        port = self._upstream(host)
        if port is None:
            self.send_error(502)
            return
        upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        _pipe(self.connection, upstream, self.server.tunnelled)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        if self.server.holding:
            self.server.release.wait(60)
            self.close_connection = True
            return
        url = urlsplit(self.path)
        port = self._upstream(url.hostname or "")
        if url.scheme != "http" or port is None:
            self.send_error(502)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("proxy-")}
        upstream = HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body, headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _forward
    do_GET = _forward


class Proxy:
    """A loopback forward proxy that reaches the hosts in `routes` (name -> loopback port)."""

    def __init__(self, routes: dict[str, int]) -> None:
        self._server = _ProxyServer(routes)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[Seen]:
        return list(self._server.seen)

    @property
    def tunnelled(self) -> bytes:
        return b"".join(self._server.tunnelled)

    def hold(self, holding: bool = True) -> None:
        """Hold every request from now on: read it, answer nothing, until `stop()`."""
        self._server.holding = holding

    def stop(self) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()


class TLSFront:
    """Terminates TLS on a loopback port and relays the plain bytes to `upstream_port`."""

    def __init__(self, context: ssl.SSLContext, upstream_port: int) -> None:
        self._context = context
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Condition()
        self._open: set[socket.socket] = set()
        self._relays_ended = 0
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def wait_relays_ended(self, n: int, timeout: float) -> bool:
        """Wait until `n` connections were relayed to their end and closed."""
        with self._lock:
            return self._lock.wait_for(lambda: self._relays_ended >= n, timeout)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._open.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)  # `conn` is detached
        except (OSError, ValueError):  # a client that does not trust our CA hangs up
            tls = None
        with self._lock:
            self._open.discard(conn)
            if tls is not None:
                self._open.add(tls)
        if tls is None:
            _close(conn)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=30)
        except OSError:
            upstream = None
        if upstream is None:
            _close(tls)
        else:
            _pipe(tls, upstream)
        with self._lock:
            self._open.discard(tls)
            self._relays_ended += 1
            self._lock.notify_all()

    def stop(self) -> None:
        """Stop accepting and end the relays. Sockets are only shut down here (which wakes their
        threads); each is closed by the thread that uses it."""
        with self._lock:
            socks, threads = [self._listener, *self._open], list(self._threads)
        for sock in socks:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's: it drops the TLS state
        for thread in threads:
            thread.join(5)
        _close(self._listener)


@pytest.fixture(autouse=True)
def _clean_network_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sets the proxy and CA environment it is about; the rest is unset."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield
    respan_instrument.uninstrument()


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture()
def https_collector(ca: Any, collector: Collector) -> Iterator[TLSFront]:
    """The collector behind TLS, with a certificate for respan.test and 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(RESPAN_HOST, "127.0.0.1").configure_cert(context)
    front = TLSFront(context, collector.port)
    yield front
    front.stop()


@pytest.fixture()
def proxy(collector: Collector) -> Iterator[Proxy]:
    """A forward proxy for which respan.test is the collector."""
    proxy = Proxy({RESPAN_HOST: collector.port})
    yield proxy
    proxy.stop()


@pytest.fixture()
def tls_proxy(https_collector: TLSFront) -> Iterator[Proxy]:
    """A forward proxy for which respan.test is the collector behind TLS."""
    proxy = Proxy({RESPAN_HOST: https_collector.port})
    yield proxy
    proxy.stop()


def _chat(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def _bodies(raw: bytes) -> list[dict[str, Any]]:
    """The logs a request-log POST carried (create/ sends one, bulk/ a list)."""
    data = json.loads(raw)
    return list(data["logs"]) if isinstance(data, dict) and "logs" in data else [data]


def _log_posts(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if s.method == "POST" and "/request-logs/" in s.target]


# ---- proxies --------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
def test_logs_reach_respan_through_an_http_proxy(
    variable: str, proxy: Proxy, collector: Collector, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the OpenAI stub is reached directly
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=f"http://{RESPAN_HOST}/api")
    _chat(client)

    [log] = delivered(collector)
    posts = _log_posts(proxy.seen)
    assert posts and all(p.target.startswith(f"http://{RESPAN_HOST}/api/request-logs/") for p in posts)
    assert log["span_unique_id"] in {entry["span_unique_id"] for p in posts for entry in _bodies(p.body)}


def test_no_proxy_sends_straight_to_respan(
    proxy: Proxy, collector: Collector, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the proxy cannot reach 127.0.0.1: a log sent through it would never arrive
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.base_url)
    _chat(client)

    delivered(collector)
    assert proxy.seen == []


def test_https_through_a_proxy_tunnels_and_keeps_the_key_inside_tls(
    tls_proxy: Proxy, collector: Collector, ca_file: str, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", tls_proxy.url)
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=f"https://{RESPAN_HOST}/api")
    _chat(client)

    delivered(collector)
    seen = tls_proxy.seen
    assert seen and all(s.method == "CONNECT" for s in seen)
    assert seen[0].target == f"{RESPAN_HOST}:443"
    for request in seen:
        assert "authorization" not in {name.lower() for name in request.headers}
    tunnelled = tls_proxy.tunnelled
    assert tunnelled  # the proxy carried the bytes, and could read none of them
    assert RESPAN_KEY.encode() not in tunnelled and b"request-logs" not in tunnelled


def test_an_unusable_proxy_setting_is_said_without_its_password_and_the_log_waits(
    proxy: Proxy,
    collector: Collector,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "ftp://user:s3cret-pw@127.0.0.1:1")
    with caplog.at_level(logging.WARNING, logger="respan_instrument"):
        respan_instrument.instrument(api_key=RESPAN_KEY, base_url=f"http://{RESPAN_HOST}/api")
        _chat(client)
        assert respan_instrument.flush(10)
    said = [r.getMessage() for r in caplog.records if "proxy and CA environment" in r.getMessage()]
    assert said and "ftp://" in said[0]
    assert "s3cret-pw" not in caplog.text
    assert collector.logs == []
    respan_instrument.uninstrument()

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=f"http://{RESPAN_HOST}/api")
    delivered(collector)


# ---- certificates ---------------------------------------------------------------------------
def _trust(variable: str, ca: Any, ca_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if variable == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
        return
    # a c_rehash-style directory: OpenSSL looks certificates up by their subject hash
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command names the hashed file of SSL_CERT_DIR")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    digest = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", ca_file],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    ).stdout.strip()
    ca.cert_pem.write_to_path(str(cert_dir / f"{digest}.0"))
    monkeypatch.setenv("SSL_CERT_DIR", str(cert_dir))


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_a_private_ca_is_trusted_through_the_ssl_environment(
    variable: str,
    https_collector: TLSFront,
    collector: Collector,
    ca: Any,
    ca_file: str,
    client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base_url = f"https://127.0.0.1:{https_collector.port}/api"
    # without the CA: the certificate is refused, the log waits in the spool
    with caplog.at_level(logging.WARNING, logger="respan_instrument"):
        respan_instrument.instrument(api_key=RESPAN_KEY, base_url=base_url)
        _chat(client)
        assert respan_instrument.flush(10)
    assert any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records), caplog.text
    assert collector.logs == []
    respan_instrument.uninstrument()

    # trusting the CA, the next pipeline delivers what was spooled, once
    _trust(variable, ca, ca_file, tmp_path, monkeypatch)
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=base_url)
    [log] = delivered(collector)
    assert log["model"].startswith("gpt-4o-mini")


# ---- slow answers ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_slow_respan_is_waited_for_not_sent_twice(instrumented: Collector, client: Any) -> None:
    collector = instrumented
    collector.set_delay(
        11.5
    )  # longer than a 10 s deadline: a slow answer must not make us abandon and re-send the post
    _chat(client)

    started = time.monotonic()
    assert respan_instrument.flush(30)
    assert time.monotonic() - started >= 10
    assert len(collector.logs) == 1
    assert len(collector.requests) == 1


def test_a_lost_attempt_is_retried_with_the_same_ids(instrumented: Collector, client: Any) -> None:
    collector = instrumented
    collector.drop_connection_next()
    _chat(client)

    [log] = delivered(collector)
    attempts = [r for r in collector.requests if "/request-logs/" in r.path]
    assert [r.status for r in attempts] == [0, 201]
    [lost] = _bodies(attempts[0].body)
    assert (lost["span_unique_id"], lost["trace_unique_id"]) == (
        log["span_unique_id"],
        log["trace_unique_id"],
    )
    assert attempts[0].body == attempts[1].body  # the spooled bytes, re-sent as they were


def test_respan_timeout_bounds_the_wait_for_an_answer(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("RESPAN_TIMEOUT", "1")
    proxy.hold()
    with caplog.at_level(logging.WARNING, logger="respan_instrument"):
        respan_instrument.instrument(api_key=RESPAN_KEY, base_url=f"http://{RESPAN_HOST}/api")
        respan_instrument.log(model="gpt-4o-mini")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "ReadTimeout" not in caplog.text:
            time.sleep(0.05)
    assert "ReadTimeout" in caplog.text
    assert _log_posts(proxy.seen)


@pytest.mark.parametrize("value", ["soon", "0", "-5", "61", "nan"])
def test_a_bad_respan_timeout_is_a_value_error_naming_it(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPAN_TIMEOUT", value)
    with pytest.raises(ValueError, match="RESPAN_TIMEOUT"):
        respan_instrument.instrument(api_key=RESPAN_KEY, base_url="http://127.0.0.1:9/api")


EXITING_APP = textwrap.dedent(
    """
    import openai, respan_instrument

    respan_instrument.instrument()
    client = openai.OpenAI(api_key="sk-test", base_url={stub!r}, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    """
)


def test_exit_while_a_post_hangs_is_bounded_and_keeps_the_log(
    proxy: Proxy, collector: Collector, stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("RESPAN_API_KEY", RESPAN_KEY)
    monkeypatch.setenv("RESPAN_BASE_URL", f"http://{RESPAN_HOST}/api")
    monkeypatch.setenv("RESPAN_EXIT_TIMEOUT", "2")
    proxy.hold()  # Respan takes the post and never answers
    started = time.monotonic()
    app = subprocess.run(
        [sys.executable, "-c", EXITING_APP.format(stub=stub.url + "/v1")],
        capture_output=True,
        timeout=40,
        env=dict(os.environ),
    )
    took = time.monotonic() - started
    assert app.returncode == 0, app.stderr.decode(errors="replace")
    assert b"Traceback" not in app.stderr and b"Exception ignored" not in app.stderr, app.stderr
    assert took < 20  # the exit flush is bounded by RESPAN_EXIT_TIMEOUT, not by the read timeout
    [hung] = _log_posts(proxy.seen)

    # Respan answers again: the next process delivers the log, once, with the ids it had
    proxy.hold(False)
    respan_instrument.instrument()
    [log] = delivered(collector)
    [sent] = _bodies(hung.body)
    assert (sent["span_unique_id"], sent["trace_unique_id"]) == (
        log["span_unique_id"],
        log["trace_unique_id"],
    )


# ---- the test servers themselves ------------------------------------------------------------
def test_the_tls_front_never_writes_through_a_closed_descriptor(ca: Any) -> None:
    """When the upstream hangs up first, the front's TLS connection must not be closed while its
    other thread still reads it: OpenSSL keeps the descriptor's number, and once the client hangs
    up it writes its alert through that number, into whatever now has it (once, a child process's
    stderr pipe under xdist)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    upstream = socket.create_server(("127.0.0.1", 0))
    front = TLSFront(context, upstream.getsockname()[1])
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    client = trusting.wrap_socket(
        socket.create_connection(("127.0.0.1", front.port)), server_hostname="127.0.0.1"
    )
    try:
        client.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            client.recv(1)  # takes the session tickets: the client's hangup below is a clean one
        accepted, _ = upstream.accept()
        accepted.close()  # the upstream hangs up: the front ends the relay
        front.wait_relays_ended(1, 0.5)  # (the old front kept reading the client here)
        # numbers the front may have let go of are taken; a write through one lands in a pair
        pairs = [socket.socketpair() for _ in range(40)]
        client.close()  # the client hangs up: the front's reader wakes
        assert front.wait_relays_ended(1, 10)
        stray = []
        for a, b in pairs:
            for end in (a, b):
                end.setblocking(False)
                try:
                    stray.append(end.recv(100))
                except BlockingIOError:
                    pass
        assert stray == []
    finally:
        for a, b in pairs:
            _close(a, b)
        front.stop()
        _close(upstream, client)
