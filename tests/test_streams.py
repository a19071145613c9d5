"""Streams: one log per stream however it ends, with ttft and usage, invisible to the user."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import httpx
import pytest
from conftest import OPENAI_KEY, delivered

import respan_instrument

MSG = [{"role": "user", "content": "one two three four five six"}]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def dumps(chunks: list[Any]) -> list[Any]:
    return [c.model_dump(exclude={"id", "created"}) for c in chunks]


def test_full_iteration(instrumented, client) -> None:
    import openai

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    (log,) = delivered(instrumented)
    assert log["stream"] is True and log["status"] == "success"
    assert log["completion_message"] == {"role": "assistant", "content": text_of(chunks)}
    assert 0 < log["ttft"] <= log["generation_time"]
    assert "metadata" not in log
    assert "prompt_tokens" not in log  # 127.0.0.1 is not a host we ask for usage on


def test_usage_injected_and_hidden(instrumented, openai_host_client, stub) -> None:
    user_options = {"include_obfuscation": False}
    chunks = list(
        openai_host_client.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options=user_options
        )
    )
    assert user_options == {"include_obfuscation": False}  # never mutate the caller's dict
    assert stub.requests[-1].body["stream_options"]["include_usage"] is True
    assert all(c.choices for c in chunks), "the usage-only chunk must stay hidden"
    (log,) = delivered(instrumented)
    assert log["prompt_tokens"] > 0 and log["completion_tokens"] > 0 and log["cost"] > 0
    # the same call uninstrumented sees exactly the same chunks
    respan_instrument.uninstrument()
    bare = list(
        openai_host_client.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options=user_options
        )
    )
    assert dumps(bare) == dumps(chunks)


def test_user_asked_for_usage_sees_it(instrumented, openai_host_client) -> None:
    chunks = list(
        openai_host_client.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    (log,) = delivered(instrumented)
    assert log["prompt_tokens"] == chunks[-1].usage.prompt_tokens


def test_tool_call_deltas_and_n(instrumented, client) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSG, tools=tools, stream=True))
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MSG, n=2, stream=True))
    first, second = delivered(instrumented, 2)
    args = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or ())
    )
    (call,) = first["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": args}
    assert call["id"]
    assert len(second["completion_messages"]) == 2


@pytest.mark.parametrize("how", ["break", "close", "with", "raise", "gc"])
def test_early_exits_log_once_as_cut_short(instrumented, client, how) -> None:
    def run() -> None:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
        if how == "with":
            with stream as s:
                for _ in s:
                    break
        elif how == "raise":
            with pytest.raises(KeyError):
                for _ in stream:
                    raise KeyError("user bug")
        elif how == "close":  # closed before reading anything, twice
            stream.close()
            stream.close()
        else:
            for _ in stream:
                break
            if how == "break":
                stream.close()

    run()
    gc.collect()
    (log,) = delivered(instrumented)
    assert log["status"] == "success"
    assert log["metadata"] == {"stream_cut_short": "true"}


def test_mid_stream_failure_is_an_error(instrumented, client) -> None:
    received = []
    with pytest.raises(Exception) as info:
        for chunk in client.chat.completions.create(model="stream-fail", messages=MSG, stream=True):
            received.append(chunk)
    (log,) = delivered(instrumented)
    assert log["status"] == "error"
    assert type(info.value).__name__ in log["error_message"]
    assert log["completion_message"]["content"] == text_of(received)


def test_chat_stream_helper(instrumented, client) -> None:
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MSG) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MSG) as stream:
        for event in stream:
            if event.type == "content.delta":
                break
    first, second = delivered(instrumented, 2)
    assert first["completion_message"]["content"] == final.choices[0].message.content
    assert "metadata" not in first
    assert second["metadata"] == {"stream_cut_short": "true"}


def test_responses_stream_and_helper(instrumented, client) -> None:
    events = list(client.responses.create(model="gpt-4o-mini", input="hello there", stream=True))
    with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    first, second = delivered(instrumented, 2)
    completed = events[-1].response
    assert first["log_type"] == "response" and first["stream"] is True
    assert first["prompt_tokens"] == completed.usage.input_tokens
    assert first["output"][0]["content"][0]["text"] == completed.output_text
    assert first["ttft"] > 0 and first["cost"] > 0
    assert second["output"][0]["content"][0]["text"] == final.output_text


def test_legacy_completion_stream(instrumented, client) -> None:
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once", stream=True))
    (log,) = delivered(instrumented)
    assert log["output"] == "".join(c.choices[0].text for c in chunks if c.choices)


def test_async_streams(instrumented, aclient) -> None:
    import openai

    async def main() -> str:
        async with aclient() as c:
            stream = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
            assert isinstance(stream, openai.AsyncStream)
            text = ""
            async for chunk in stream:
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            stream2 = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
            async with stream2 as s:
                async for _ in s:
                    break
            async with c.chat.completions.stream(model="gpt-4o-mini", messages=MSG) as s3:
                async for _ in s3:
                    pass
            return text

    text = asyncio.run(main())
    first, second, third = delivered(instrumented, 3)
    assert first["completion_message"]["content"] == text and "metadata" not in first
    assert second["metadata"] == {"stream_cut_short": "true"}
    assert third["status"] == "success"


def test_with_streaming_response(instrumented, client) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MSG
    ) as response:
        assert response.headers.get("x-request-id")
        completion = response.parse()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MSG, stream=True
    ) as response:
        chunks = list(response.parse())
    first, second = delivered(instrumented, 2)
    assert first["stream"] is False
    assert first["completion_message"]["content"] == completion.choices[0].message.content
    assert first["prompt_tokens"] == completion.usage.prompt_tokens
    assert second["stream"] is True
    assert second["completion_message"]["content"] == text_of(chunks)


def test_async_with_streaming_response(instrumented, aclient) -> None:
    async def main() -> Any:
        async with aclient() as c:
            async with c.chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=MSG
            ) as response:
                return await response.parse()

    completion = asyncio.run(main())
    (log,) = delivered(instrumented)
    assert log["completion_message"]["content"] == completion.choices[0].message.content


def test_streaming_response_read_raw_still_logged(instrumented, client) -> None:
    with client.embeddings.with_streaming_response.create(
        model="text-embedding-3-small", input="x"
    ) as response:
        response.read()
    (log,) = delivered(instrumented)
    assert log["log_type"] == "embedding" and log["status"] == "success"


def test_stream_span_is_current_while_consumed(collector, client, traced) -> None:
    from opentelemetry import trace

    provider, exported = traced
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handler") as handler:
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True):
            with tracer.start_as_current_span("per-chunk"):
                pass
        assert trace.get_current_span() is handler  # ours stopped being current at the end
        with tracer.start_as_current_span("after"):
            pass
    delivered(collector)
    spans = {s.name: s for s in exported.get_finished_spans()}
    ours = spans["chat gpt-4o-mini"]
    assert spans["per-chunk"].parent.span_id == ours.context.span_id
    assert spans["after"].parent.span_id == handler.get_span_context().span_id


def _failing_add(monkeypatch: Any, at: int) -> Any:
    from respan_instrument.endpoints import chat as _accumulate

    real_add, seen = _accumulate.ChatAccumulator.add, []

    def add(self: Any, chunk: Any) -> bool:
        seen.append(chunk)
        if len(seen) == at:
            raise RuntimeError("accumulator bug")
        return real_add(self, chunk)

    real_run = _accumulate.ChatAccumulator.run

    def run(self: Any, events: list[Any], start: int) -> tuple[int, int]:
        """The worker's fast path over plain chunks, counted and failing alike, one at a time."""
        if start >= len(events):
            return start, -1
        if len(seen) + 1 == at:
            seen.append(events[start])
            raise RuntimeError("accumulator bug")
        end, first = real_run(self, events[: start + 1], start)
        if end > start:
            seen.append(events[start])
        return end, first

    monkeypatch.setattr(_accumulate.ChatAccumulator, "add", add)
    monkeypatch.setattr(_accumulate.ChatAccumulator, "run", run)
    return real_add


def _story_chunks(client: Any) -> list[Any]:
    messages = [{"role": "user", "content": "Tell me a story"}]
    return [
        c.choices[0].delta.content
        for c in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        if c.choices
    ]


def _internal_errors(caplog: Any, where: str) -> list[Any]:
    return [r for r in caplog.records if r.name == "respan_instrument" and where in r.getMessage()]


def test_our_failure_following_a_traced_stream_never_reaches_the_loop(
    collector, traced, client, monkeypatch, caplog
) -> None:
    """Outside our own test suite's strict mode, a bug of ours while following a stream (with a
    span, through the proxy) is logged once; the user gets every chunk, the call one log."""
    monkeypatch.delenv("RESPAN_INSTRUMENT_STRICT")
    provider, _ = traced
    real_add = _failing_add(monkeypatch, 3)
    chunks = _story_chunks(client)
    from respan_instrument.endpoints import chat as _accumulate

    monkeypatch.setattr(_accumulate.ChatAccumulator, "add", real_add)
    respan_instrument.uninstrument()
    assert chunks == _story_chunks(client) and len(chunks) > 3
    respan_instrument.instrument(
        api_key=collector.api_key, base_url=collector.url + "/api", tracer_provider=provider
    )
    (log,) = delivered(collector, 1)
    assert log["status"] == "success" and log["stream"] is True
    assert len(_internal_errors(caplog, "following a stream")) == 1


def test_our_failure_reading_a_lean_stream_still_logs(
    instrumented, openai_host_client, monkeypatch, caplog
) -> None:
    """With no span the worker reads the stream's events: a bug of ours there is logged once
    and the log still goes out, with the output read before it and the usage sent after it."""
    monkeypatch.delenv("RESPAN_INSTRUMENT_STRICT")
    _failing_add(monkeypatch, 3)
    chunks = _story_chunks(openai_host_client)
    (log,) = delivered(instrumented, 1)
    assert len(chunks) > 3
    assert log["status"] == "success" and log["stream"] is True and log["prompt_tokens"] > 0
    assert log["completion_message"]["content"] == "".join(chunks[:2])  # the two events before the bug
    assert len(_internal_errors(caplog, "reading a stream's events")) == 1


def _in_memory_openai(is_async: bool = False, error_after: int | None = None) -> Any:
    """A client whose transport answers from memory, the way tests and benchmarks often do: the
    SDK gets a response whose body is already read, so the response's byte stream never runs.
    It plays api.openai.com: the usage-only chunk is sent when (and only when) asked for."""
    import json

    import openai

    hx: Any = httpx
    if openai.__version__.split(".")[0] >= "3":
        import httpx2

        hx = httpx2

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        base = {
            "id": "chatcmpl-m",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
        }
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        events += [{**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "}}]} for i in range(6)]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if error_after is not None:  # an error event mid-stream, as OpenAI sends one
            events = events[:error_after] + [
                {"error": {"message": "The server had an error", "type": "server_error"}}
            ]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                {
                    **base,
                    "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
                }
            )
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return hx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})

    transport = hx.MockTransport(handler)
    if is_async:
        return openai.AsyncOpenAI(
            api_key=OPENAI_KEY,
            base_url="https://api.openai.com/v1",
            http_client=hx.AsyncClient(transport=transport),
        )
    return openai.OpenAI(
        api_key=OPENAI_KEY, base_url="https://api.openai.com/v1", http_client=hx.Client(transport=transport)
    )


@pytest.mark.parametrize(
    "how", ["full", "break-close", "break-dropped", "with-break", "dropped-unread", "closed-unread"]
)
def test_streams_over_an_in_memory_transport(instrumented, how) -> None:
    """With no span the user gets the SDK's own `Stream` (no proxy in between); a body that was
    read before the SDK saw it still makes exactly one log, whichever way the stream ends."""
    import openai

    client = _in_memory_openai()
    gc.disable()  # what ends each call is the stream's own end, not a collection
    try:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
        assert type(stream) is openai.Stream
        chunks = []
        if how == "full":
            chunks = list(stream)
        elif how == "break-close":
            for chunk in stream:
                chunks.append(chunk)
                break
            stream.close()
        elif how == "break-dropped":  # no close(): the log goes when the user drops the stream
            for chunk in stream:
                chunks.append(chunk)
                break
        elif how == "with-break":
            with stream:
                for chunk in stream:
                    chunks.append(chunk)
                    break
        elif how == "closed-unread":
            stream.close()
        del stream
        (log,) = delivered(instrumented)
    finally:
        gc.enable()
        client.close()
    assert all(c.choices for c in chunks)  # the usage chunk we asked for never reaches the user
    assert log["status"] == "success" and log["stream"] is True
    if how == "full":
        assert len(chunks) == 8
        assert log["completion_message"] == {"role": "assistant", "content": text_of(chunks)}
        assert log["prompt_tokens"] == 9 and log["completion_tokens"] == 6 and log["cost"] > 0
        assert 0 < log["ttft"] <= log["generation_time"]
        assert "metadata" not in log
    else:
        assert log["metadata"] == {"stream_cut_short": "true"}
        assert (log.get("completion_message") or {}).get("content") == (text_of(chunks) or None)
        assert "prompt_tokens" not in log  # the usage chunk comes last: never read


def test_async_streams_over_an_in_memory_transport(instrumented) -> None:
    import openai

    async def main() -> list[Any]:
        client = _in_memory_openai(is_async=True)
        async with client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
            assert type(stream) is openai.AsyncStream
            chunks = [chunk async for chunk in stream]
            stream2 = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
            async for _ in stream2:
                break
            await stream2.close()
            return chunks

    chunks = asyncio.run(main())
    first, second = delivered(instrumented, 2)
    assert len(chunks) == 8 and all(c.choices for c in chunks)
    assert first["completion_message"]["content"] == text_of(chunks) and first["prompt_tokens"] == 9
    assert "metadata" not in first
    assert second["metadata"] == {"stream_cut_short": "true"}


def test_async_mid_stream_failure_is_an_error(instrumented, aclient) -> None:
    async def main() -> tuple[list[Any], BaseException]:
        received: list[Any] = []
        async with aclient() as c:
            try:
                async for chunk in await c.chat.completions.create(
                    model="stream-fail", messages=MSG, stream=True
                ):
                    received.append(chunk)
            except Exception as exc:  # noqa: BLE001 - what the SDK raised, compared below
                return received, exc
        raise AssertionError("the stream did not fail")

    received, error = asyncio.run(main())
    (log,) = delivered(instrumented)
    assert log["status"] == "error"
    assert type(error).__name__ in log["error_message"]
    assert log["completion_message"]["content"] == text_of(received)


@pytest.mark.parametrize("is_async", [False, True])
def test_stream_helper_left_early_over_an_in_memory_transport(instrumented, is_async) -> None:
    """The `.stream()` helpers close the HTTP response itself when their `with` block ends; with
    a body read before the SDK saw it, that close still ends the call, with no collection."""
    chunks: list[Any] = []
    gc.disable()
    try:
        if is_async:

            async def main() -> None:
                client = _in_memory_openai(is_async=True)
                async with client:
                    async with client.chat.completions.stream(model="gpt-4o-mini", messages=MSG) as helper:
                        async for event in helper:
                            if event.type == "chunk":
                                chunks.append(event.chunk)
                                break

            asyncio.run(main())
        else:
            client = _in_memory_openai()
            with client.chat.completions.stream(model="gpt-4o-mini", messages=MSG) as helper:
                for event in helper:
                    if event.type == "chunk":
                        chunks.append(event.chunk)
                        break
            client.close()
        (log,) = delivered(instrumented)
    finally:
        gc.enable()
    assert log["status"] == "success" and log["metadata"] == {"stream_cut_short": "true"}
    assert log["completion_message"]["content"] == (text_of(chunks) or None)


def test_error_event_mid_stream_over_an_in_memory_transport(instrumented) -> None:
    """An error event in the stream: the SDK raises it to the user, and the log is that error,
    with the output received before it."""
    import openai

    client = _in_memory_openai(error_after=3)
    received: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True):
            received.append(chunk)
    client.close()
    (log,) = delivered(instrumented)
    assert len(received) == 3
    assert log["status"] == "error" and "metadata" not in log
    assert info.value.message in log["error_message"] and "APIError" in log["error_message"]
    assert log["completion_message"]["content"] == text_of(received)


BLOCK = 4096  # the events a lean stream keeps before it reads them (capture/tap.py's FOLD_AT)


@pytest.mark.parametrize("chunks", [BLOCK - 1, BLOCK, BLOCK + 200])
def test_long_lean_streams_are_read_on_the_way(instrumented, openai_host_client, chunks) -> None:
    """A long stream's events are read in blocks as it runs: what it keeps does not grow with the
    stream (the memory held at two points a block apart is the same); the log is the same as when
    the worker reads them all at the end."""
    import tracemalloc

    text, usage_chunks, held = "", 0, []
    stream = openai_host_client.chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True, extra_headers={"x-stub-chunks": str(chunks)}
    )
    if chunks > BLOCK:
        tracemalloc.start()
    try:
        for i, chunk in enumerate(stream):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            else:
                usage_chunks += 1
            if tracemalloc.is_tracing() and i in (100, 100 + BLOCK):
                held.append(tracemalloc.get_traced_memory()[0])
                if len(held) == 2:
                    tracemalloc.stop()
    finally:
        tracemalloc.stop()
    (log,) = delivered(instrumented)
    if chunks > BLOCK:  # kept without reading, a block of events is some 1.5 MB
        assert len(held) == 2 and held[1] - held[0] < 500_000, held
    assert usage_chunks == 0  # the usage-only chunk we asked for stays ours
    assert log["completion_message"] == {"role": "assistant", "content": text}
    assert log["prompt_tokens"] > 0 and log["cost"] > 0 and 0 < log["ttft"] <= log["generation_time"]
    assert "metadata" not in log
