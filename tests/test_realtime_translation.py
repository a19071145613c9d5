"""Realtime translation sessions (SPEC §13): `realtime.translations.connect()`, sync and async,
against a loopback server whose events are the SDK's own types. Each session is one
`transcription` log, timed from open to close, priced per minute of audio time."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest
from conftest import delivered, sdk_has, start

from tests.socket_servers import events_until as _until
from tests.socket_servers import socket_client as _client

pytest.importorskip("websockets")
openai = pytest.importorskip("openai")


pytestmark = pytest.mark.skipif(
    not sdk_has("realtime", "translations", "connect"), reason="no realtime translations in this SDK"
)
PER_MINUTE = 2.04 / 60  # gpt-realtime-translate in genai-prices: USD 2.04 an hour
HELD = 0.02  # seconds a session of the hang-up test is kept open (its seconds are rounded to 1 ms)


@pytest.fixture(scope="module")
def server() -> Any:
    from tests.socket_servers import translation_server

    with translation_server() as srv:
        yield srv
    assert not srv.errors


def test_session_is_one_log_timed_open_to_close(instrumented: Any, server: Any) -> None:
    from tests.socket_servers import HEARD_SPANISH, TRANSLATED

    opened = time.time()
    with _client(server).realtime.translations.connect(model="gpt-realtime-translate") as conn:
        session_id = _until(conn, "session.created")[-1].session.id
        conn.session.input_audio_buffer.append(audio="AAAA")
        _until(conn, "session.output_transcript.delta")
        time.sleep(0.2)
        conn.session.close()
        _until(conn, "session.closed")
    elapsed = time.time() - opened
    (log,) = delivered(instrumented, 1)
    assert log["log_type"] == "transcription" and log["model"] == "gpt-realtime-translate"
    seconds = log["usage"]["seconds"]
    assert log["usage"]["type"] == "duration" and 0.2 <= seconds <= elapsed
    assert log["generation_time"] == pytest.approx(seconds, abs=0.01)
    assert log["cost"] == pytest.approx(seconds / 60 * PER_MINUTE, rel=1e-6)
    assert log["input"] == HEARD_SPANISH and log["output"] == TRANSLATED and log["language"] == "en"
    assert log["thread_identifier"] == session_id and log["status"] == "success"


def test_server_hangup_app_close_and_drop_each_log_once(instrumented: Any, server: Any) -> None:
    from websockets.exceptions import ConnectionClosed

    # Each session is held open a while before it ends: one ended by the loopback alone can
    # last under the millisecond its seconds are rounded to (seen under load: a dropped session
    # whose `session.created` was already buffered lasted 0.3 ms and logged 0.0 s).
    with (
        pytest.raises(ConnectionClosed),
        _client(server).realtime.translations.connect(model="gpt-realtime-translate") as conn,
    ):
        time.sleep(HELD)
        conn.session.input_audio_buffer.append(audio="hangup")
        for _ in conn:
            pass
    with _client(server).realtime.translations.connect(model="gpt-realtime-translate") as conn:
        _until(conn, "session.created")
        time.sleep(HELD)
    dropped = _client(server).realtime.translations.connect(model="gpt-realtime-translate").enter()
    _until(dropped, "session.created")
    time.sleep(HELD)
    del dropped
    gc.collect()
    logs = delivered(instrumented, 3)
    assert {log["model"] for log in logs} == {"gpt-realtime-translate"}
    # (priced, however short: a session of milliseconds may round to a cost of 0)
    assert all("cost" in log and log["usage"]["seconds"] >= HELD for log in logs), [
        (log.get("cost"), log["usage"]["seconds"], log.get("thread_identifier"))
        for log in logs
        if not ("cost" in log and log["usage"]["seconds"] >= HELD)
    ]


def test_unknown_model_has_no_cost(instrumented: Any, server: Any) -> None:
    with _client(server).realtime.translations.connect(model="translate-from-nowhere") as conn:
        _until(conn, "session.created")
    (log,) = delivered(instrumented, 1)
    assert log["model"] == "translate-from-nowhere" and "cost" not in log


def test_async_session(instrumented: Any, server: Any) -> None:
    from tests.socket_servers import TRANSLATED

    async def session() -> None:
        async with _client(server, is_async=True).realtime.translations.connect(
            model="gpt-realtime-translate"
        ) as conn:
            await conn.session.input_audio_buffer.append(audio="AAAA")
            async for event in conn:
                if event.type == "session.output_transcript.delta":
                    break
            await conn.session.close()
            async for event in conn:
                if event.type == "session.closed":
                    break

    asyncio.run(session())
    (log,) = delivered(instrumented, 1)
    assert log["output"] == TRANSLATED and log["cost"] > 0


def _events(server: Any) -> list[str]:
    with _client(server).realtime.translations.connect(model="gpt-realtime-translate") as conn:
        events = _until(conn, "session.created")
        conn.session.input_audio_buffer.append(audio="AAAA")
        events += _until(conn, "session.output_transcript.delta")
        conn.session.close()
        events += _until(conn, "session.closed")
    return [type(e).__name__ + e.to_json(indent=None).split('"event_id"')[0] for e in events]


def test_events_unchanged(collector: Any, server: Any) -> None:
    import respan_instrument

    bare = _events(server)
    start(collector)
    try:
        assert [e.split("{")[0] for e in _events(server)] == [e.split("{")[0] for e in bare]
        assert len(delivered(collector, 1)) == 1
    finally:
        respan_instrument.uninstrument()
