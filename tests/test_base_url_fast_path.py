"""The client's base URL is read from its instance dict, not through its `base_url` property
(openai 3.x's imports a module on each read); a base URL set later is the one read."""

from __future__ import annotations

from conftest import delivered

from respan_instrument.capture import patch


def test_base_url_read_without_the_property(instrumented, stub, client) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    held = patch._plain_base_url.get(type(client))
    assert held in ("_base_url", "_configured_base_url")  # (3.x: `_configured_base_url`)
    assert vars(client)[held] is client.base_url
    client.base_url = stub.url + "/openai/v1/"
    assert vars(client)[held] is client.base_url
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}])
    logs = delivered(instrumented, 2)
    assert [log["prompt_messages"][0]["content"] for log in logs] == ["x", "y"]
