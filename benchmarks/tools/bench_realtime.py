"""Added cost per realtime event on the app's thread: bare SDK vs instrumented, over the loopback
Realtime server, text deltas and audio deltas (1 KB of base64 each), interleaved rounds.

    PYTHONPATH=. python benchmarks/tools/bench_realtime.py [--rounds 7] [--deltas 2000]

Thread CPU time of the receiving thread only (the server runs on threads of its own), divided by
the events of the response. The hook alone (no socket, no SDK parsing) is timed too: it is what
the recorder adds to each `recv_bytes()`, whatever the network costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import openai

import respan_instrument
from respan_instrument.local.collector import Collector

# the loopback Realtime server is a test fixture: it lives with the tests, not in the package
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.realtime_server import AUDIO_CHUNK, RealtimeServer  # noqa: E402

KEY = "rk-bench"


def one_response(server: RealtimeServer, deltas: int, audio: bool) -> tuple[float, int]:
    """Thread CPU µs to receive one response of `deltas` deltas, and the events received."""
    client = openai.OpenAI(
        api_key="sk-bench", base_url="http://127.0.0.1:9/v1", websocket_base_url=server.url
    )
    with client.realtime.connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"deltas={deltas}"}],
            }
        )
        params: Any = {"output_modalities": ["audio"]} if audio else {}
        start = time.thread_time_ns()
        conn.response.create(response=params)
        events = 0
        for event in conn:
            events += 1
            if event.type == "response.done":
                break
        return (time.thread_time_ns() - start) / 1e3, events


def hook_alone(n: int) -> dict[str, float]:
    """µs per `Session.received()` on a text and an audio delta, a response in flight."""
    from respan_instrument.capture.realtime_socket import Session, _Response

    hooks: Any = None
    session = Session(hooks, None, {})
    at = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
    text = json.dumps(
        {"type": "response.output_text.delta", "event_id": "event_000001", **at, "delta": "word "}
    ).encode()
    audio = json.dumps(
        {"type": "response.output_audio.delta", "event_id": "event_000002", **at, "delta": AUDIO_CHUNK}
    ).encode()
    out = {}
    for name, data in (("text delta", text), ("audio delta", audio)):
        best = float("inf")
        for _ in range(5):
            session.current = _Response(0)
            start = time.perf_counter_ns()
            for _ in range(n):
                session.received(data)
            best = min(best, (time.perf_counter_ns() - start) / n / 1e3)
        out[name] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--deltas", type=int, default=2000)
    args = parser.parse_args()
    collector = Collector(api_key=KEY)
    collector.start()
    with RealtimeServer() as server:
        for audio in (False, True):
            bare, ours = [], []
            for _ in range(args.rounds):
                cpu, events = one_response(server, args.deltas, audio)
                bare.append(cpu / events)
                respan_instrument.instrument(api_key=KEY, base_url=collector.base_url)
                cpu, events = one_response(server, args.deltas, audio)
                ours.append(cpu / events)
                respan_instrument.flush(10)
                respan_instrument.uninstrument()
            b, o = statistics.median(bare), statistics.median(ours)
            kind = "audio+transcript" if audio else "text"
            print(
                f"{kind:17} deltas: bare {b:6.2f} µs/event, instrumented {o:6.2f} µs/event, added {o - b:+.2f} µs"
            )
    for name, cost in hook_alone(20000).items():
        print(f"hook alone, {name:11}: {cost:.3f} µs")
    collector.stop()


if __name__ == "__main__":
    main()
