"""The client's base URL is read from its instance dict, not through its `base_url` property
(openai 3.x's imports a module on each read); a base URL set later is the one read."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import OPENAI_KEY, Forward, delivered

import respan_instrument

MSG = [{"role": "user", "content": "x"}]


def _counting_client(stub: Any) -> Any:
    """A client whose `base_url` property counts its reads (the SDK's own reads included)."""
    import openai

    class Counting(openai.OpenAI):
        reads = 0

        @property  # type: ignore[override]
        def base_url(self) -> Any:
            Counting.reads += 1
            return openai.OpenAI.base_url.fget(self)  # type: ignore[attr-defined]

        @base_url.setter
        def base_url(self, url: Any) -> None:
            openai.OpenAI.base_url.fset(self, url)  # type: ignore[attr-defined]

    transport = httpx.Client(transport=Forward(stub.url))
    return Counting(api_key=OPENAI_KEY, base_url=stub.url + "/v1", max_retries=0, http_client=transport)


def test_base_url_read_without_the_property(instrumented, stub) -> None:
    client = _counting_client(stub)

    def reads_of_a_call() -> int:
        before = type(client).reads
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        return type(client).reads - before

    def streamed_body() -> dict[str, Any]:
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True):
            pass
        return stub.requests[-1].body

    reads_of_a_call()  # a client class's first call: where its property reads from is found once
    ours = reads_of_a_call()
    assert "stream_options" not in streamed_body()  # a host of unknown manners: its stream as sent
    client.base_url = "https://api.openai.com/v1/"  # OpenAI's host: asked for a stream's usage
    assert streamed_body()["stream_options"] == {"include_usage": True}
    logs = delivered(instrumented, 4)
    assert [log["stream"] for log in logs] == [False, False, True, True]
    respan_instrument.uninstrument()
    assert reads_of_a_call() == ours  # the SDK's own reads only: we add none
    client.close()
