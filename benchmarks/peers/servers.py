"""Loopback servers for the peer benchmark, in a process of their own so their CPU is nobody's.

    <python with respan_instrument> servers.py

Starts a Respan-compatible Collector (where ours exports), an OpenAIStub (the loopback HTTP
chat workload) and a small control endpoint (GET /count: logs accepted so far, POST /clear).
Prints one JSON line with the URLs, then serves until its standard input closes.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from respan_instrument.local import Collector, OpenAIStub


def main() -> None:
    collector = Collector().start()
    stub = OpenAIStub(
        reply="Hello there, how can I help?",
        usage={"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    ).start()

    class Control(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def _send(self, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._send({"logs": len(collector.logs), "stub_requests": len(stub.requests)})

        def do_POST(self) -> None:  # noqa: N802
            collector.clear()
            stub.clear()
            self._send({"ok": True})

    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(
        json.dumps(
            {
                "collector": collector.base_url,
                "stub": stub.base_url,
                "control": f"http://127.0.0.1:{control.server_address[1]}",
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    control.shutdown()
    stub.stop()
    collector.stop()


if __name__ == "__main__":
    main()
