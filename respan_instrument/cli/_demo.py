"""`respan-instrument demo`: real openai SDK calls to a local stub, logged to a local collector."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub

from ._table import render_table, render_totals

__all__ = ["run_demo"]

_WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@contextlib.contextmanager
def _isolated_settings() -> Iterator[None]:
    """Hide RESPAN_* / OTEL_SDK_DISABLED so the demo never depends on (or sends to) a real account,
    and give it a spool of its own so it never touches (or drains) the user's real one."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("RESPAN_") or k == "OTEL_SDK_DISABLED"}
    for name in saved:
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="respan-demo-") as spool:
        os.environ["RESPAN_SPOOL_DIR"] = spool
        try:
            yield
        finally:
            del os.environ["RESPAN_SPOOL_DIR"]
            os.environ.update(saved)


@contextlib.contextmanager
def _quiet_package_logger() -> Iterator[None]:
    """Warnings such as "no price for model error-429" are expected here; keep the output clean."""
    package_logger = logging.getLogger("respan_instrument")
    level = package_logger.level
    package_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        package_logger.setLevel(level)


def _make_calls(client: Any) -> int:
    """The demo's calls through the real SDK, split over three customers; returns how many were made."""
    import openai

    calls = 0
    with respan_instrument.attributes(customer_identifier="alice", metadata={"source": "demo"}):
        client.chat.completions.create(model="gpt-4o-mini", messages=_user("Say hello to Alice."))
        calls += 1
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=_user("Stream a short greeting."),
            stream=True,
            stream_options={"include_usage": True},
        )
        for _chunk in stream:
            pass
        calls += 1
        client.chat.completions.create(
            model="gpt-4o", messages=_user("What is the weather in Paris?"), tools=[_WEATHER_TOOL]
        )
        calls += 1
    with respan_instrument.attributes(customer_identifier="bob", metadata={"source": "demo"}):
        client.embeddings.create(model="text-embedding-3-small", input=["request logs", "OpenTelemetry"])
        calls += 1
        client.responses.create(model="gpt-4o-mini", input="Write a haiku about request logs.")
        calls += 1
        try:
            client.chat.completions.create(model="error-429", messages=_user("This one is rate limited."))
        except openai.RateLimitError:
            pass
        calls += 1
    with respan_instrument.attributes(customer_identifier="carol", metadata={"source": "demo"}):
        client.images.generate(model="gpt-image-1", prompt="A lighthouse drawn as a request log")
        calls += 1
        client.audio.transcriptions.create(
            model="whisper-1", file=("standup.mp3", bytes(48 * 1024), "audio/mpeg")
        )
        calls += 1
        client.audio.speech.create(model="tts-1", voice="alloy", input="Every call is a request log.")
        calls += 1
    return calls


def _arrow() -> str:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "\u2192".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "\u2192"


def _ordered(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(logs, key=lambda log: str(log.get("start_time") or log.get("timestamp") or ""))


def _report(calls: int, logs: Sequence[Mapping[str, Any]], seconds: float) -> str:
    lines = [
        f"{calls} calls made through the real openai SDK {_arrow()} {len(logs)} logs received "
        f"by a local Respan-compatible collector ({seconds:.1f} s, nothing left this machine)",
        "",
        render_table(logs),
        "",
        "Totals per customer:",
        render_totals(logs),
    ]
    if len(logs) < calls:
        lines += ["", f"({calls - len(logs)} call(s) not logged: e.g. streaming not supported by this build)"]
    lines += [
        "",
        "Try it with your own app:",
        "  respan-instrument collect      # local collector on http://127.0.0.1:8765/api",
        "  RESPAN_BASE_URL=http://127.0.0.1:8765/api RESPAN_API_KEY=any respan-instrument run app.py",
        "Or set only RESPAN_API_KEY to send your app's request logs to Respan.",
    ]
    return "\n".join(lines)


def run_demo() -> int:
    """Run the offline demo and print what the collector received; 0 when logs arrived."""
    import openai

    started = time.perf_counter()
    with _isolated_settings(), _quiet_package_logger():
        with OpenAIStub() as stub, Collector() as collector:
            respan_instrument.instrument(api_key="demo-key", base_url=collector.base_url)
            try:
                client = openai.OpenAI(base_url=stub.base_url, api_key="sk-demo", max_retries=0)
                try:
                    calls = _make_calls(client)
                finally:
                    client.close()
                delivered = respan_instrument.flush(10)
            finally:
                respan_instrument.uninstrument()
            logs = _ordered(collector.logs)
    print(_report(calls, logs, time.perf_counter() - started))
    if not delivered:
        print("warning: not every log was delivered within 10 s", file=sys.stderr)
    return 0 if logs else 1
