"""The `respan-instrument` command line, run as real subprocesses: demo, collect, logs and run."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
from conftest import RESPAN_KEY

from respan_instrument.cli import main
from respan_instrument.local import Collector, OpenAIStub

CLI = [sys.executable, "-m", "respan_instrument.cli"]

APP = """\
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test-app", max_retries=0)
reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from app.py"}]
)
print(reply.choices[0].message.content)
sys.exit(int(sys.argv[2]))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RESPAN_") or k in ("RESPAN_INSTRUMENT_STRICT", "RESPAN_SPOOL_DIR")
    }
    env.pop("OTEL_SDK_DISABLED", None)
    env.update(extra)
    return env


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )


class _Lines:
    """Lines of a child's stream, read on a thread so a test can wait for one with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} in {self.seen}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"stream ended before {pattern!r}: {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def rest(self, timeout: float = 10.0) -> list[str]:
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                return self.seen
            self.seen.append(line)


def test_demo_runs_offline_and_prints_the_table(tmp_path: Path) -> None:
    env = _env(RESPAN_API_KEY="rk-must-not-be-used", RESPAN_BASE_URL="http://127.0.0.1:9/api")
    started = time.monotonic()
    result = _cli("demo", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    out = result.stdout
    header = re.search(r"(\d+) calls made through the real openai SDK (?:→|->) (\d+) logs received", out)
    assert header, out
    assert int(header.group(1)) == 9 and int(header.group(2)) >= 8, out  # the stream may not be logged
    rows = [line.split() for line in out.splitlines()]
    assert any(r[:1] == ["chat"] and "alice" in r and r[-1] == "ok" for r in rows), out
    assert any(r[:1] == ["embedding"] and "bob" in r for r in rows), out
    for log_type in ("generation", "transcription", "speech"):
        assert any(r[:1] == [log_type] and "carol" in r and r[-1] == "ok" for r in rows), (log_type, out)
    assert any(r[:2] == ["chat", "error-429"] and "bob" in r and r[-2:] == ["error", "429"] for r in rows), (
        out
    )
    assert any(r[:1] == ["response"] for r in rows), out
    totals = {r[0]: r for r in rows if len(r) == 4 and r[0] in ("alice", "bob")}
    assert set(totals) == {"alice", "bob"} and totals["bob"][1] == "3", out
    assert "respan-instrument collect" in out and "RESPAN_API_KEY" in out


def test_collect_prints_each_log_and_logs_reads_them_back(tmp_path: Path) -> None:
    db = tmp_path / "logs.sqlite3"
    proc = subprocess.Popen(
        [*CLI, "collect", "--port", "0", "--db", str(db), "--api-key", "rk-cli"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        assert proc.stdout is not None
        out = _Lines(proc.stdout)
        base_url = out.wait_for(r"RESPAN_BASE_URL=http://127\.0\.0\.1:\d+/api$").split("=", 1)[1]
        create = base_url + "/request-logs/create/"
        assert httpx.post(create, json={"model": "gpt-4o-mini"}).status_code == 401
        for customer, prompt in (("carol", 12), ("dave", 7)):
            log = {
                "log_type": "chat",
                "model": "gpt-4o-mini",
                "customer_identifier": customer,
                "prompt_tokens": prompt,
                "completion_tokens": 3,
                "cost": 0.000123,
                "generation_time": 0.25,
                "status_code": 200,
                "status": "success",
            }
            response = httpx.post(create, json=log, headers={"Authorization": "Bearer rk-cli"})
            assert response.status_code == 201, response.text
        line = out.wait_for(r"customer=carol")
        assert "chat" in line and "gpt-4o-mini" in line and "tokens=12+3" in line and "cost=0.000123" in line
        assert line.endswith("ok")
        out.wait_for(r"customer=dave")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "Collector stopped; 2 log(s) received." in out.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    every = _cli("logs", "--db", str(db), cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    rows = [line.split() for line in every.stdout.splitlines()]
    carol = next(r for r in rows if "carol" in r)
    assert carol[1:] == ["chat", "gpt-4o-mini", "carol", "12", "3", "0.000123", "250.0", "-", "ok"]
    assert [r[3] for r in rows if r[1:2] == ["chat"]] == ["carol", "dave"]  # newest last

    only_carol = _cli("logs", "--db", str(db), "--customer", "carol", cwd=tmp_path)
    assert "carol" in only_carol.stdout and "dave" not in only_carol.stdout
    newest = _cli("logs", "--db", str(db), "--model", "gpt-4o", "--limit", "1", cwd=tmp_path)
    assert "dave" in newest.stdout and "carol" not in newest.stdout
    nobody = _cli("logs", "--db", str(db), "--customer", "erin", cwd=tmp_path)
    assert nobody.returncode == 0 and "No matching logs." in nobody.stdout


def test_run_instruments_an_unmodified_app(tmp_path: Path, stub: OpenAIStub, collector: Collector) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = _env(RESPAN_API_KEY=RESPAN_KEY, RESPAN_BASE_URL=collector.base_url)
    result = _cli("run", "--", sys.executable, str(app), stub.base_url, "3", cwd=tmp_path, env=env)
    assert result.returncode == 3, result.stderr  # the app's own exit code
    assert "Echo: hello from app.py" in result.stdout
    assert collector.wait_for(1, timeout=10)
    time.sleep(0.2)
    logs = collector.logs
    assert len(logs) == 1, logs
    assert logs[0]["model"].startswith("gpt-4o-mini")
    assert logs[0]["prompt_messages"] == [{"role": "user", "content": "hello from app.py"}]


def test_run_chains_sitecustomize_and_survives_bad_settings(tmp_path: Path, stub: OpenAIStub) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("CHAINED = True\n")
    (tmp_path / "app.py").write_text(
        APP.replace("sys.exit(", "import sitecustomize\nprint(sitecustomize.__file__)\nsys.exit(")
    )
    env = _env(RESPAN_API_KEY=RESPAN_KEY, RESPAN_BASE_URL="not-a-url", PYTHONPATH=str(other))
    result = _cli("run", "app.py", stub.base_url, "0", cwd=tmp_path, env=env)  # `app.py` = this Python
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("RESPAN_BASE_URL='not-a-url' is not an http(s) URL") == 1, result.stderr
    assert "Echo: hello from app.py" in result.stdout  # the app ran, uninstrumented
    assert str(other / "sitecustomize.py") in result.stdout  # the shadowed sitecustomize still ran


def test_run_reports_a_missing_program(tmp_path: Path) -> None:
    result = _cli("run", "--", "respan-no-such-program-xyz", cwd=tmp_path)
    assert result.returncode == 127
    assert "respan-no-such-program-xyz: command not found" in result.stderr


def test_logs_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "--db", str(tmp_path / "missing.sqlite3")]) == 1
    assert "no database" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["collect", "--port", "70000"])
    assert exit_info.value.code == 2


def test_spool_status_and_flush(tmp_path, collector) -> None:
    env = {**os.environ, "RESPAN_SPOOL_DIR": str(tmp_path / "spool")}
    code = (
        "import respan_instrument, os, time\n"
        f"respan_instrument.instrument(api_key={RESPAN_KEY!r}, base_url={collector.url + '/api'!r})\n"
        "respan_instrument.log(model='gpt-4o-mini', customer_identifier='spooled')\n"
        "time.sleep(1.5)\n"
        "os._exit(0)\n"  # die without the exit flush: Respan is down, the log is in the spool
    )
    collector.set_outage(True)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    collector.set_outage(False)
    status = subprocess.run(
        [sys.executable, "-m", "respan_instrument.cli", "spool", "status"],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    flushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "respan_instrument.cli",
            "spool",
            "flush",
            "--base-url",
            collector.url + "/api",
            "--api-key",
            RESPAN_KEY,
        ],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert collector.wait_for(1)
    assert [log["customer_identifier"] for log in collector.logs] == ["spooled"]
    assert "logs       1" in status.stdout
