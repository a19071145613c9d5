"""Raw streams: `with_raw_response.create(stream=True)` then `.parse()` (how litellm streams),
and `with_streaming_response` of a stream. One log per stream however it ends, like any other
stream; the user gets the SDK's own stream. Nothing of ours reaches stderr."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import delivered
from test_streams import dumps, text_of

import respan_instrument

MSG = [{"role": "user", "content": "one two three four five six"}]
CHAT = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
CUT_SHORT = {"stream_cut_short": "true"}


def test_raw_stream_is_logged_and_unchanged(instrumented, openai_host_client, stub) -> None:
    import openai

    raw = openai_host_client.chat.completions.with_raw_response.create(**CHAT)
    assert raw.headers.get("x-request-id")
    stream = raw.parse()
    assert type(stream) is openai.Stream
    assert raw.parse() is stream  # the SDK caches parse(): the same stream again
    chunks = list(stream)
    assert stub.requests[-1].body["stream_options"]["include_usage"] is True
    assert all(c.choices for c in chunks), "the usage-only chunk we asked for must stay hidden"
    del raw, stream
    (log,) = delivered(instrumented)
    assert log["stream"] is True and log["status"] == "success" and "metadata" not in log
    assert log["completion_message"] == {"role": "assistant", "content": text_of(chunks)}
    assert log["prompt_tokens"] > 0 and log["completion_tokens"] > 0 and log["cost"] > 0
    assert 0 < log["ttft"] <= log["generation_time"]
    # the same call uninstrumented gives exactly the same chunks
    respan_instrument.uninstrument()
    bare = list(openai_host_client.chat.completions.with_raw_response.create(**CHAT).parse())
    assert dumps(bare) == dumps(chunks)


@pytest.mark.parametrize(
    "how", ["break", "close", "raise", "gc", "headers-only", "http-close", "parse-twice"]
)
def test_raw_stream_early_exits_log_once(instrumented, client, how) -> None:
    def run() -> None:
        raw = client.chat.completions.with_raw_response.create(**CHAT)
        if how == "headers-only":  # litellm reads the headers first; here it never parses
            assert raw.headers["content-type"].startswith("text/event-stream")
            assert raw.http_response.status_code == 200
            return
        if how == "http-close":
            raw.http_response.close()
            return
        stream = raw.parse()
        if how == "close":
            stream.close()
            stream.close()
        elif how == "raise":
            with pytest.raises(KeyError):
                for _ in stream:
                    raise KeyError("user bug")
        elif how == "parse-twice":
            for _ in stream:
                break
            assert raw.parse() is stream
            for _ in raw.parse():
                pass
        else:
            for _ in stream:
                break
            if how == "break":
                stream.close()

    run()
    gc.collect()
    (log,) = delivered(instrumented)
    assert log["stream"] is True and log["status"] == "success"
    if how == "parse-twice":  # read to the end, across both parse() results
        assert "metadata" not in log and log["completion_message"]["content"].startswith("Echo:")
    else:
        assert log["metadata"] == CUT_SHORT


@pytest.mark.parametrize("how", ["break", "unparsed", "chained"])
def test_raw_stream_dropped_logs_at_once(instrumented, client, how) -> None:
    """No cycle of ours keeps a dropped raw response (and its log) waiting for the collector;
    a wrapper dropped the moment its parse() is looked up (`create(...).parse()`) is no end."""
    gc.disable()
    try:
        if how == "chained":
            chunks = list(client.chat.completions.with_raw_response.create(**CHAT).parse())
        else:
            raw = client.chat.completions.with_raw_response.create(**CHAT)
            if how == "break":
                for _ in raw.parse():
                    break
            del raw
        (log,) = delivered(instrumented)
    finally:
        gc.enable()
    if how == "chained":
        assert "metadata" not in log and log["completion_message"]["content"] == text_of(chunks)
    else:
        assert log["metadata"] == CUT_SHORT


def test_raw_stream_mid_stream_failure_is_an_error(instrumented, client) -> None:
    received = []
    raw = client.chat.completions.with_raw_response.create(**{**CHAT, "model": "stream-fail"})
    with pytest.raises(Exception) as info:
        for chunk in raw.parse():
            received.append(chunk)
    (log,) = delivered(instrumented)
    assert log["status"] == "error" and log["stream"] is True
    assert type(info.value).__name__ in log["error_message"]
    assert log["completion_message"]["content"] == text_of(received)


def test_raw_responses_and_completions_streams(instrumented, client) -> None:
    events = list(
        client.responses.with_raw_response.create(
            model="gpt-4o-mini", input="hello there", stream=True
        ).parse()
    )
    chunks = list(
        client.completions.with_raw_response.create(
            model="gpt-3.5-turbo-instruct", prompt="Once", stream=True
        ).parse()
    )
    first, second = delivered(instrumented, 2)
    completed = events[-1].response
    assert first["log_type"] == "response" and first["stream"] is True
    assert first["prompt_tokens"] == completed.usage.input_tokens
    assert first["output"][0]["content"][0]["text"] == completed.output_text
    assert second["stream"] is True
    assert second["output"] == "".join(c.choices[0].text for c in chunks if c.choices)


def test_raw_stream_with_a_span_is_the_sdk_stream_proxied(collector, client, traced) -> None:
    import openai

    raw = client.chat.completions.with_raw_response.create(**CHAT)
    stream = raw.parse()
    assert isinstance(stream, openai.Stream) and raw.parse() is stream
    chunks = list(stream)
    (log,) = delivered(collector)
    assert log["completion_message"]["content"] == text_of(chunks) and log["stream"] is True
    _, exported = traced
    assert [s.name for s in exported.get_finished_spans()] == ["chat gpt-4o-mini"]


def test_async_raw_streams(instrumented, aclient) -> None:
    import openai

    async def main() -> str:
        async with aclient() as c:
            raw = await c.chat.completions.with_raw_response.create(**CHAT)
            stream = raw.parse()  # (a raw response's parse() is not awaited, even on async)
            assert type(stream) is openai.AsyncStream and raw.parse() is stream
            text = ""
            async for chunk in stream:
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            raw2 = await c.chat.completions.with_raw_response.create(**CHAT)
            async for _ in raw2.parse():
                break
            del raw2
            raw3 = await c.responses.with_raw_response.create(model="gpt-4o-mini", input="hi", stream=True)
            assert raw3.headers.get("x-request-id")
            del raw3  # never parsed
            async with c.chat.completions.with_streaming_response.create(**CHAT) as response:
                streamed = await response.parse()  # awaited: an AsyncAPIResponse
                assert isinstance(streamed, openai.AsyncStream) and await response.parse() is streamed
                async for _ in streamed:
                    pass
            return text

    text = asyncio.run(main())
    gc.collect()
    first, second, third, fourth = delivered(instrumented, 4)
    assert first["completion_message"]["content"] == text and "metadata" not in first
    assert second["metadata"] == CUT_SHORT and second["stream"] is True
    assert third["log_type"] == "response" and third["metadata"] == CUT_SHORT
    assert fourth["status"] == "success" and "metadata" not in fourth
    assert all(log["stream"] is True for log in (first, second, third, fourth))


def test_streaming_response_of_a_stream(instrumented, client) -> None:
    import openai

    with client.chat.completions.with_streaming_response.create(**CHAT) as response:
        stream = response.parse()
        assert isinstance(stream, openai.Stream) and response.parse() is stream
        chunks = list(stream)
    with client.chat.completions.with_streaming_response.create(**CHAT) as response:
        assert response.headers.get("x-request-id")  # never parsed
    first, second = delivered(instrumented, 2)
    assert first["completion_message"]["content"] == text_of(chunks) and "metadata" not in first
    assert second["stream"] is True and second["metadata"] == CUT_SHORT


APP = """
import gc, os, sys
import openai
import respan_instrument
from respan_instrument.local import Collector, OpenAIStub

stub = OpenAIStub(); stub.start()
collector = Collector(api_key="rk-test-key"); collector.start()
respan_instrument.instrument(api_key="rk-test-key", base_url=collector.url + "/api")
client = openai.OpenAI(api_key="sk-test", base_url=stub.url + "/v1", max_retries=0)
chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", APP + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        env=environ,
        check=False,
    )


@pytest.mark.parametrize("strict", ["0", "1"])
def test_raw_streams_leave_stderr_empty(tmp_path, strict) -> None:
    done = _run(
        """
        for how in ("exhaust", "break", "drop", "unparsed"):
            raw = client.chat.completions.with_raw_response.create(**chat)
            if how != "unparsed":
                for _ in raw.parse():
                    if how != "exhaust":
                        break
            del raw
            gc.collect()
        assert respan_instrument.flush(10)
        print(len(collector.logs))
        """,
        RESPAN_SPOOL_DIR=str(tmp_path),
        RESPAN_INSTRUMENT_STRICT=strict,
    )
    assert done.stderr == "" and done.returncode == 0
    assert done.stdout.split() == ["4"]


def test_a_failing_finalizer_of_ours_is_contained(tmp_path) -> None:
    """A finalizer that fails reports through our logger, is counted in strict mode, and prints
    nothing to stderr (Python prints an exception a `__del__` lets out)."""
    done = _run(
        """
        import logging
        from respan_instrument import _errors
        from respan_instrument.capture import stream as _stream

        seen = []
        handler = logging.Handler()
        handler.emit = lambda record: seen.append(record.getMessage())
        logger = logging.getLogger("respan_instrument")
        logger.addHandler(handler)
        logger.propagate = False

        class Sink:
            def first_output(self, when_ns): pass
            def enter(self): return None
            def leave(self, token): pass
            def finish_stream(self, error, cut_short): raise RuntimeError("ours")

        try:  # a proxy that cannot be built: its __del__ still runs
            _stream.TracedStream(object(), Sink(), lambda item: False, None)
        except AttributeError:
            pass
        stream = client.chat.completions.create(**chat)
        proxied = _stream.TracedStream(stream, Sink(), lambda item: False, None)
        del proxied  # dropped unfinished: its finish fails
        gc.collect()
        print(len(_errors.failures), sum("finishing a dropped stream" in m for m in seen))
        """,
        RESPAN_SPOOL_DIR=str(tmp_path),
        RESPAN_INSTRUMENT_STRICT="1",
    )
    assert done.stderr == "" and done.returncode == 0
    assert done.stdout.split() == ["1", "1"]
