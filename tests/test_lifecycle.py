"""Patch, unpatch, import order, idempotence, suppression: the instrumentation's life cycle."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import RESPAN_KEY, child_env, delivered

import respan_instrument


def test_uninstrument_restores_originals_exactly(collector) -> None:
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    before = (SyncAPIClient.__dict__["request"], AsyncAPIClient.__dict__["request"])
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")
    assert SyncAPIClient.__dict__["request"] is not before[0]
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")  # idempotent
    respan_instrument.uninstrument()
    assert (SyncAPIClient.__dict__["request"], AsyncAPIClient.__dict__["request"]) == before
    respan_instrument.uninstrument()  # twice is harmless


def test_no_logs_after_uninstrument(collector, client) -> None:
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert respan_instrument.flush(5)
    respan_instrument.uninstrument()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}])
    # nothing of that call may be waiting anywhere either: a new pipeline delivers nothing more
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")
    try:
        assert respan_instrument.flush(5)
    finally:
        respan_instrument.uninstrument()
    assert [log["prompt_messages"][0]["content"] for log in collector.logs] == ["x"]


def test_one_log_per_call_when_instrumented_twice(instrumented, client) -> None:
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=instrumented.url + "/api")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    delivered(instrumented, 1)


def test_suppress_instrumentation(instrumented, client) -> None:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}])
    (log,) = delivered(instrumented, 1)
    assert log["prompt_messages"][0]["content"] == "y"


def test_other_endpoints_pass_through(instrumented, client, stub) -> None:
    import openai

    models = client.models.list()
    assert isinstance(models, openai.pagination.SyncPage) and models.data  # the SDK's own result, untouched
    assert [r.path for r in stub.requests] == ["/v1/models"]
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    (log,) = delivered(instrumented, 1)  # one log: the chat call, none for the listing
    assert log["log_type"] == "chat"


def _app(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run as an app of its own, configured only by what it passes instrument()."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_") or k == "RESPAN_SPOOL_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("order", ["instrument-first", "openai-first"])
def test_import_order(order, collector, stub) -> None:
    code = f"""
    import sys
    import respan_instrument
    assert "openai" not in sys.modules, "importing us must not import openai"
    if {order == "openai-first"!r}:
        import openai
    respan_instrument.instrument(api_key={RESPAN_KEY!r}, base_url={collector.url + "/api"!r})
    import openai
    c = openai.OpenAI(api_key="sk-x", base_url={stub.url + "/v1"!r})
    c.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "sub"}}])
    assert respan_instrument.flush(10)
    print(openai.__version__.split(".")[0], "httpx" in sys.modules)
    """
    result = _app(code)
    assert collector.wait_for(1, timeout=5)
    assert collector.logs[0]["prompt_messages"][0]["content"] == "sub"
    major, has_httpx = result.stdout.split()
    if int(major) >= 3:  # delivery went through the SDK's own httpx2: no second HTTP library loaded
        assert has_httpx == "False"


def test_no_key_sends_nothing_and_warns_once(collector, stub, tmp_path) -> None:
    """An app without RESPAN_API_KEY: its calls are traced, nothing is sent, and the process is
    told once, however often it instruments."""
    env = child_env(collector, stub, str(tmp_path / "spool"))
    del env["RESPAN_API_KEY"]
    code = (
        "import logging, os\n"
        "logging.basicConfig(format='%(name)s: %(message)s')\n"
        "import openai, respan_instrument\n"
        "client = openai.OpenAI(api_key='sk-x', base_url=os.environ['STUB_URL'], max_retries=0)\n"
        "for _ in range(2):\n"
        "    respan_instrument.instrument()\n"
        "    client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'x'}])\n"
        "    assert respan_instrument.flush(2)\n"
        "    respan_instrument.uninstrument()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, errors="replace", timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert collector.requests == []
    warning = "respan_instrument: no RESPAN_API_KEY; calls are traced but no logs are sent to Respan"
    assert done.stderr.count(warning) == 1, done.stderr


def test_otel_sdk_disabled(collector, client, monkeypatch) -> None:
    from openai._base_client import SyncAPIClient

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    before = SyncAPIClient.__dict__["request"]
    respan_instrument.instrument(api_key=RESPAN_KEY, base_url=collector.url + "/api")
    assert SyncAPIClient.__dict__["request"] is before
    respan_instrument.uninstrument()


def test_public_surface() -> None:
    assert set(respan_instrument.__all__) >= {"instrument", "uninstrument", "flush", "attributes", "log"}
    for name in respan_instrument.__all__:
        assert hasattr(respan_instrument, name)


def test_instrument_imports_none_of_the_sdks_surfaces_and_one_imported_later_is_followed(
    collector,
) -> None:
    """The SDK imports a surface's module when the app first touches it; instrument() must
    not import them all up front (the realtime modules alone took a third of a second, against
    a budget of 50 ms for import and instrument() together), and a WebSocket surface whose
    module arrives after instrument() is still followed."""
    pytest.importorskip("websockets")
    openai = pytest.importorskip("openai")
    if not hasattr(openai.OpenAI(api_key="sk-x", base_url="http://127.0.0.1:9/v1").responses, "connect"):
        pytest.skip("no Responses WebSocket mode in this SDK")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"""
    import sys
    sys.path[:0] = [{root!r}, {os.path.join(root, "tests")!r}]
    import openai
    import respan_instrument
    before = set(sys.modules)
    respan_instrument.instrument(api_key={RESPAN_KEY!r}, base_url={collector.url + "/api"!r})
    imported = sorted(m for m in set(sys.modules) - before if m.startswith("openai"))
    assert not imported, (len(imported), imported[:5])
    assert "openai.resources.responses.responses" not in sys.modules
    from tests.socket_servers import responses_server, socket_client, events_until
    with responses_server() as server:
        with socket_client(server).responses.connect() as conn:
            conn.response.create(model="gpt-5-mini", input=[{{"role": "user", "content": "late"}}])
            events_until(conn, "response.completed")
    assert respan_instrument.flush(10)
    """
    _app(code)
    assert collector.wait_for(1, timeout=5)
    (log,) = collector.logs
    assert log["input"] == [{"role": "user", "content": "late"}] and log["metadata"]["websocket"] == "true"
