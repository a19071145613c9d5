"""The app gets the SDK's own objects in every mode: the HTTP library's response type behind a
stream (the SDK's own helpers check it with `type(...)`), and the bytes the server would send an
uninstrumented client where the app reads them raw."""

from __future__ import annotations

import asyncio
import json

from conftest import RESPAN_KEY, delivered

import respan_instrument

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}], "stream": True}
RESPONSES = {"model": "gpt-4o-mini", "input": "one two three", "stream": True}


def _bare_types(client):
    """The types an uninstrumented client hands out for the same calls."""
    stream = client.chat.completions.create(**CHAT)
    with client.chat.completions.with_streaming_response.create(**CHAT) as raw:
        raw_type = type(raw.http_response)
    kinds = type(stream.response), raw_type
    stream.close()
    return kinds


def test_a_traced_stream_response_is_the_http_librarys_own(traced, collector, client) -> None:
    respan_instrument.uninstrument()
    bare_response, bare_raw = _bare_types(client)
    provider, _ = traced
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", tracer_provider=provider
    )
    stream = client.chat.completions.create(**CHAT)
    assert type(stream.response) is bare_response
    list(stream)
    with client.responses.create(**RESPONSES) as events:
        assert type(events.response) is bare_response
        list(events)
    with client.chat.completions.with_streaming_response.create(**CHAT) as raw:
        assert type(raw.http_response) is bare_raw
        list(raw.parse())
    with client.chat.completions.with_streaming_response.create(**{**CHAT, "stream": False}) as raw:
        assert type(raw.http_response) is bare_raw
    with client.chat.completions.stream(**{k: v for k, v in CHAT.items() if k != "stream"}) as helper:
        for _ in helper:
            break  # left early: the helper closes the HTTP response itself, which ends the call
    logs = delivered(collector, 5)
    assert [log["stream"] for log in logs] == [True, True, True, False, True]
    assert logs[-1]["metadata"] == {"stream_cut_short": "true"}
    assert [log.get("metadata") for log in logs] == [None, None, None, None, {"stream_cut_short": "true"}]


def test_async_traced_stream_response_is_the_http_librarys_own(traced, collector, aclient) -> None:
    async def main() -> None:
        async with aclient() as client:
            respan_instrument.uninstrument()
            bare = await client.chat.completions.create(**CHAT)
            bare_type = type(bare.response)
            await bare.close()
            provider, _ = traced
            respan_instrument.instrument(
                api_key=RESPAN_KEY, base_url=collector.url + "/api", tracer_provider=provider
            )
            stream = await client.chat.completions.create(**CHAT)
            assert type(stream.response) is bare_type
            async for _ in stream:
                pass
            stream = await client.chat.completions.create(**CHAT)
            await stream.response.aclose()  # closed by the app before the end: cut short

    asyncio.run(main())
    first, second = delivered(collector, 2)
    assert "metadata" not in first and second["metadata"] == {"stream_cut_short": "true"}


def test_raw_bytes_of_a_stream_carry_no_usage_chunk_of_ours(instrumented, openai_host_client, stub) -> None:
    """On a host where we ask for `include_usage`, the bytes the app reads itself are those an
    uninstrumented client gets: no request changed for it, no extra chunk."""
    with openai_host_client.chat.completions.with_streaming_response.create(**CHAT) as response:
        lines = list(response.iter_lines())
    assert "stream_options" not in stub.requests[-1].body
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert chunks and all(chunk["choices"] for chunk in chunks)
    with openai_host_client.chat.completions.with_streaming_response.create(**CHAT) as response:
        data = b"".join(response.iter_bytes())
    assert b'"choices":[]' not in data.replace(b" ", b"")
    (first, second) = delivered(instrumented, 2)
    assert first["stream"] is True and second["stream"] is True


def test_async_raw_bytes_of_a_stream_carry_no_usage_chunk_of_ours(instrumented, stub) -> None:
    import httpx
    import openai

    class AsyncForward(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            target = httpx.URL(stub.url)
            request.url = request.url.copy_with(scheme="http", host=target.host, port=target.port)
            return await self._inner.handle_async_request(request)

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx.AsyncClient(transport=AsyncForward()),
        )
        async with client:
            async with client.chat.completions.with_streaming_response.create(**CHAT) as response:
                return [line async for line in response.iter_lines()]

    lines = asyncio.run(main())
    assert "stream_options" not in stub.requests[-1].body
    assert all(json.loads(line[6:])["choices"] for line in lines if line.startswith("data: {"))
    delivered(instrumented, 1)
