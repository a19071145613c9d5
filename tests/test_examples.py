"""The examples/ scripts run as documented against the local stub and collector."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RESPAN_KEY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(args: list[str], stub, collector, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPAN_", "OPENAI_", "OTEL_"))}
    env.update(
        RESPAN_API_KEY=RESPAN_KEY,
        RESPAN_BASE_URL=collector.url + "/api",
        RESPAN_SPOOL_DIR=str(Path.cwd() / "spool"),
        OPENAI_API_KEY="sk-local",
        OPENAI_BASE_URL=stub.url + "/v1",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    result = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture()
def spool_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_web_service(stub, collector, spool_cwd) -> None:
    out = run([sys.executable, str(EXAMPLES / "web_service.py"), "--once"], stub, collector)
    assert "answer" in out.stdout
    assert collector.wait_for(1)
    (log,) = collector.logs
    assert log["customer_identifier"] == "acme" and log["metadata"] == {"service": "web-example"}


def test_chatbot(stub, collector, spool_cwd) -> None:
    run([sys.executable, str(EXAMPLES / "chatbot.py"), "hello", "and again"], stub, collector)
    assert collector.wait_for(2)
    assert [log["stream"] for log in collector.logs] == [True, True]
    assert len(collector.logs[1]["prompt_messages"]) == 4  # system, user, assistant, user


def test_batch_job(stub, collector, spool_cwd) -> None:
    run([sys.executable, str(EXAMPLES / "batch_job.py")], stub, collector)
    assert collector.wait_for(20)
    assert {log["custom_identifier"] for log in collector.logs} == {f"item-{i}" for i in range(20)}
    assert {log["customer_identifier"] for log in collector.logs} == {"nightly-batch"}


def test_plain_app_zero_code(stub, collector, spool_cwd) -> None:
    script = Path(sys.executable).parent / "respan-instrument"
    run([str(script), "run", str(EXAMPLES / "plain_app.py")], stub, collector)
    assert collector.wait_for(1) and len(collector.logs) == 1
