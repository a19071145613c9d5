"""A small WSGI service that tags every request's OpenAI calls with the caller's customer id.

python examples/web_service.py            # serves on http://127.0.0.1:8000/?q=hi
curl -H 'X-Customer-Id: acme' 'http://127.0.0.1:8000/?q=hello'
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

import openai

import respan_instrument

respan_instrument.instrument(attributes={"metadata": {"service": "web-example"}})
client = openai.OpenAI()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    question = parse_qs(environ.get("QUERY_STRING", "")).get("q", ["Say hi"])[0]
    customer = environ.get("HTTP_X_CUSTOMER_ID", "anonymous")
    with respan_instrument.attributes(
        customer_identifier=customer, thread_identifier=environ.get("HTTP_X_SESSION")
    ):
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
    body = json.dumps({"answer": answer.choices[0].message.content}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    with make_server("127.0.0.1", 0 if "--once" in sys.argv else 8000, app) as server:
        if "--once" in sys.argv:  # answer one request of our own, then exit (used by the tests)
            import threading
            import urllib.request

            threading.Thread(target=server.handle_request, daemon=True).start()
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.server_port}/?q=ping", headers={"X-Customer-Id": "acme"}
            )
            print(urllib.request.urlopen(request, timeout=30).read().decode())
        else:
            print(f"serving on http://127.0.0.1:{server.server_port}")
            server.serve_forever()
    respan_instrument.flush(10)
