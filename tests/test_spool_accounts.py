"""The spool and accounts (SPEC §5): a log is delivered only with the key it was made under, even
when apps with different keys share one spool directory; spools of earlier versions keep working;
an unusable spool directory falls back to a per-user temp directory, and only then to memory,
which flush() never calls safe and whose loss at exit is counted. Real openai SDK, loopback stub
and collector; who delivered what is read from the requests the collector accepted."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST_RETRY, chat, spool_rows, start
from faulty_collector import FaultyCollector

import respan_instrument
from respan_instrument import _spool_dirs
from respan_instrument._config import READ_TIMEOUT
from respan_instrument.cli import main
from respan_instrument.deliver import spool as _spool
from respan_instrument.deliver.drain import deliver_spool

KEY_A = "rk-app-a-0123456789abcdef"
KEY_B = "rk-app-b-fedcba9876543210"

# the layout of `logs` before key fingerprints
OLD_SCHEMA = (
    "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, base TEXT NOT NULL, created REAL NOT NULL, "
    "size INTEGER NOT NULL, owner TEXT NOT NULL DEFAULT '', lease_until REAL NOT NULL DEFAULT 0, "
    "claim INTEGER NOT NULL DEFAULT 0, body BLOB NOT NULL)"
)


@pytest.fixture(scope="module")
def _any_key_server() -> Iterator[FaultyCollector]:
    server = FaultyCollector()  # accepts every key: each request's key is read from what it carried
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def respan(_any_key_server: FaultyCollector) -> Iterator[FaultyCollector]:
    _any_key_server.clear()
    yield _any_key_server
    _any_key_server.set_outage(False)
    _any_key_server.clear()


@pytest.fixture()
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp dir, for the per-user fallback: one of the test's own."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(root))
    return root


def run_app(server: FaultyCollector, client: Any, key: str, tags: list[str], *, down: bool) -> bool:
    """One run of an app with `key`: its calls, a flush, and shutdown. Returns what flush() said."""
    server.set_outage(down)
    start(server, key)
    try:
        for tag in tags:
            chat(client, tag)
        return respan_instrument.flush(10)
    finally:
        respan_instrument.uninstrument()
        server.set_outage(False)


def by_key(server: FaultyCollector) -> dict[str, Counter[str]]:
    """{API key a request carried: Counter of the custom_identifier of the logs it delivered}."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for request in server.requests:
        if request.status not in (200, 201):
            continue
        raw = request.body
        if request.headers.get("content-encoding", "").lower() in ("gzip", "deflate"):
            raw = zlib.decompressobj(47).decompress(raw)
        body = json.loads(raw)
        key = request.headers.get("authorization", "").partition(" ")[2]
        for log in body["logs"] if "logs" in body else [body]:
            out[key][str(log.get("custom_identifier"))] += 1
    return dict(out)


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "respan_instrument" and r.levelno >= level]


# ---- one spool, two keys -----------------------------------------------------------------------


def test_two_keys_sharing_a_spool_each_deliver_only_their_own(spool_dir, respan, client, caplog) -> None:
    a_tags = [f"a-{i}" for i in range(3)]
    assert run_app(respan, client, KEY_A, a_tags, down=True)  # spooled: safe
    assert spool_rows(spool_dir) == 3 and by_key(respan) == {}

    assert run_app(respan, client, KEY_B, ["b-0"], down=False)
    assert by_key(respan) == {KEY_B: Counter({"b-0": 1})}  # A's logs never go out under B's key
    assert spool_rows(spool_dir) == 3
    left = [m for m in messages(caplog) if "another Respan API key" in m]
    assert len(left) == 1 and "3 log(s)" in left[0]
    assert KEY_A not in left[0] and KEY_B not in left[0]

    caplog.clear()
    assert run_app(respan, client, KEY_A, [], down=False)  # A's next run: flush() covers them
    assert by_key(respan) == {KEY_B: Counter({"b-0": 1}), KEY_A: Counter(dict.fromkeys(a_tags, 1))}
    assert spool_rows(spool_dir) == 0
    assert not [m for m in messages(caplog) if "another Respan API key" in m]

    on_disk = b"".join(p.read_bytes() for p in Path(spool_dir).iterdir() if p.is_file())
    assert KEY_A.encode() not in on_disk and KEY_B.encode() not in on_disk  # fingerprints, never keys


def test_a_refused_key_keeps_its_logs_for_itself(spool_dir, client, caplog) -> None:
    only_b = FaultyCollector(api_key=KEY_B)
    only_b.start()
    try:
        assert run_app(only_b, client, KEY_A, ["refused-0", "refused-1"], down=False)  # refused: spooled
        errors = messages(caplog, logging.ERROR)
        assert len(errors) == 1 and "401" in errors[0]
        assert "delivered once a process runs with a good key" not in errors[0]
        assert "only ever sent with the key it was made under" in errors[0]
        assert run_app(only_b, client, KEY_B, ["mine"], down=False)
        assert [log["custom_identifier"] for log in only_b.logs] == ["mine"]
        assert spool_rows(spool_dir) == 2
    finally:
        only_b.stop()


def test_spool_status_counts_per_key_and_spool_flush_delivers_with_the_right_key(
    spool_dir, respan, client, capsys, monkeypatch
) -> None:
    assert run_app(respan, client, KEY_A, ["a-0", "a-1", "a-2"], down=True)
    assert run_app(respan, client, KEY_B, ["b-0"], down=True)
    info = _spool.status(spool_dir, KEY_A)
    assert info["rows"] == 4 and sorted(info["by_key"].values()) == [1, 3]
    fp_a = info["current_key"]
    assert info["by_key"][fp_a] == 3 and len(fp_a) == 8 and fp_a not in KEY_A
    fp_b = _spool.status(spool_dir, KEY_B)["current_key"]
    assert fp_b != fp_a and info["by_key"][fp_b] == 1
    assert _spool.status(spool_dir)["current_key"] is None

    monkeypatch.setenv("RESPAN_API_KEY", KEY_B)
    capsys.readouterr()
    assert main(["spool", "status"]) == 0
    out = capsys.readouterr().out
    assert f"1  of key {fp_b} (this RESPAN_API_KEY's)" in out
    assert f"3  of key {fp_a} (another key's" in out
    assert KEY_A not in out and KEY_B not in out

    base = ["--base-url", respan.url + "/api"]
    assert main(["spool", "flush", *base]) == 0  # RESPAN_API_KEY is B's: B's log only
    out = capsys.readouterr().out
    assert "1 delivered" in out and "3 of other keys left" in out
    assert by_key(respan) == {KEY_B: Counter({"b-0": 1})}
    assert main(["spool", "flush", *base, "--api-key", KEY_A]) == 0
    assert "3 delivered" in capsys.readouterr().out
    assert by_key(respan) == {KEY_B: Counter({"b-0": 1}), KEY_A: Counter({"a-0": 1, "a-1": 1, "a-2": 1})}
    assert spool_rows(spool_dir) == 0


def test_a_spool_of_an_earlier_version_is_migrated_and_still_delivered(spool_dir, respan, caplog) -> None:
    os.makedirs(spool_dir)
    db = sqlite3.connect(os.path.join(spool_dir, "spool.sqlite3"))
    db.execute(OLD_SCHEMA)
    for tag in ("before-0", "before-1"):
        body = json.dumps({"model": "m", "custom_identifier": tag}).encode()
        db.execute(
            "INSERT INTO logs (base, created, size, body) VALUES (?, 0, ?, ?)",
            (respan.url + "/api", len(body), body),
        )
    db.commit()
    db.close()
    assert _spool.status(spool_dir, KEY_A)["by_key"] == {"": 2}  # read as it is, not migrated
    start(respan, KEY_A)
    try:
        assert respan_instrument.flush(10)
        respan_instrument.log(model="m", custom_identifier="after")
        assert respan_instrument.flush(10)
    finally:
        respan_instrument.uninstrument()
    assert by_key(respan) == {KEY_A: Counter({"before-0": 1, "before-1": 1, "after": 1})}
    said = [m for m in messages(caplog) if "earlier version" in m]
    assert len(said) == 1 and "2 log(s)" in said[0]
    db = sqlite3.connect(os.path.join(spool_dir, "spool.sqlite3"))
    try:
        assert "key_fp" in {row[1] for row in db.execute("PRAGMA table_info(logs)")}
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096  # its pages stay as they were
    finally:
        db.close()
    assert spool_rows(spool_dir) == 0


def test_a_new_spool_file_has_16_kb_pages_in_wal_mode(spool_dir, respan) -> None:
    start(respan, KEY_A)
    try:
        respan_instrument.log(model="m", custom_identifier="first")
        assert respan_instrument.flush(10)
    finally:
        respan_instrument.uninstrument()
    db = sqlite3.connect(os.path.join(spool_dir, "spool.sqlite3"))
    try:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 16384
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    finally:
        db.close()
    assert by_key(respan) == {KEY_A: Counter({"first": 1})}


# ---- an unusable spool directory ---------------------------------------------------------------


def unusable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RESPAN_SPOOL_DIR", str(blocker / "spool"))
    for name, value in FAST_RETRY.items():
        monkeypatch.setenv(name, value)


def test_an_unusable_spool_dir_falls_back_to_a_private_temp_dir(
    tmp_path, monkeypatch, temp_root, respan, client, caplog, capsys
) -> None:
    unusable(tmp_path, monkeypatch)
    fallback = str(temp_root / f"respan-instrument-{os.getuid()}")  # this user's, in the temp dir
    assert run_app(respan, client, KEY_A, ["tmp-0", "tmp-1"], down=True)  # safe in the fallback spool
    assert os.stat(fallback).st_mode & 0o777 == 0o700
    assert spool_rows(fallback) == 2
    said = [m for m in messages(caplog) if "cannot use the spool directory" in m]
    assert len(said) == 1 and os.path.join(fallback, "spool.sqlite3") in said[0]
    assert not [
        m for m in messages(caplog) if "a-file/spool/spool.sqlite3" in m
    ]  # never claims a missing file
    capsys.readouterr()
    assert main(["spool", "status", "--api-key", KEY_A]) == 0  # shows where the logs really are
    out = capsys.readouterr().out
    assert f"spool      {os.path.join(fallback, 'spool.sqlite3')}" in out and "(this RESPAN_API_KEY's)" in out
    assert run_app(respan, client, KEY_A, [], down=False)  # the next run finds them there
    assert by_key(respan) == {KEY_A: Counter({"tmp-0": 1, "tmp-1": 1})}
    assert spool_rows(fallback) == 0


@pytest.mark.parametrize("trap", ["symlink", "someone else's"])
def test_the_fallback_dir_is_refused_when_it_is_not_ours(
    trap, tmp_path, monkeypatch, temp_root, respan, client, caplog
) -> None:
    unusable(tmp_path, monkeypatch)
    fallback = _spool_dirs.fallback_dir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    if trap == "symlink":
        os.symlink(elsewhere, fallback)
    else:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            pytest.skip("making a directory owned by another user takes root")
        os.mkdir(fallback, 0o777)
        os.chown(fallback, 4242, 4242)
    assert run_app(respan, client, KEY_A, ["trap-0"], down=False)  # delivered all the same
    assert by_key(respan) == {KEY_A: Counter({"trap-0": 1})}
    assert list(elsewhere.iterdir()) == [] and not os.path.exists(os.path.join(fallback, "spool.sqlite3"))
    assert [m for m in messages(caplog) if "memory only" in m]


def test_no_usable_spool_flush_is_false_while_down_and_the_loss_at_exit_is_counted(
    tmp_path, monkeypatch, respan, client, caplog
) -> None:
    unusable(tmp_path, monkeypatch)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "a-file"))  # the temp dir is unusable too
    respan.set_outage(True)
    start(respan, KEY_A)
    try:
        for i in range(3):
            chat(client, f"mem-{i}")
        assert respan_instrument.flush(5) is False  # in memory only: not safe
    finally:
        respan_instrument.uninstrument()
        respan.set_outage(False)
    lost = [m for m in messages(caplog) if "lost at exit" in m]
    assert len(lost) == 1 and lost[0].startswith("respan_instrument: 3 log(s) lost at exit")
    assert [m for m in messages(caplog) if "memory only" in m]
    assert not [m for m in messages(caplog) if "spool.sqlite3" in m]  # no file named: there is none
    assert by_key(respan) == {}


def test_no_usable_spool_flush_is_true_once_respan_accepted(
    tmp_path, monkeypatch, respan, client, caplog
) -> None:
    unusable(tmp_path, monkeypatch)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "a-file"))
    assert run_app(respan, client, KEY_A, ["up-0", "up-1"], down=False)
    assert by_key(respan) == {KEY_A: Counter({"up-0": 1, "up-1": 1})}
    assert not [m for m in messages(caplog) if "lost at exit" in m]


def test_across_processes_an_app_leaves_another_apps_logs_alone(spool_dir, respan, stub, client) -> None:
    code = (
        "import openai, respan_instrument\n"
        "respan_instrument.instrument()\n"
        f"c = openai.OpenAI(api_key='sk-x', base_url={stub.url + '/v1'!r}, max_retries=0)\n"
        "for i in range(4):\n"
        "    with respan_instrument.attributes(custom_identifier=f'child-{i}'):\n"
        "        c.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'x'}])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env.update(
        FAST_RETRY,
        RESPAN_API_KEY=KEY_A,
        RESPAN_BASE_URL=respan.url + "/api",
        RESPAN_SPOOL_DIR=spool_dir,
        RESPAN_EXIT_TIMEOUT="2",
        RESPAN_INSTRUMENT_STRICT="1",
    )
    respan.set_outage(True)
    child = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, errors="replace", timeout=60
    )
    respan.set_outage(False)
    assert child.returncode == 0, child.stderr
    assert spool_rows(spool_dir) == 4
    assert run_app(respan, client, KEY_B, ["parent"], down=False)
    assert by_key(respan) == {KEY_B: Counter({"parent": 1})}
    result = deliver_spool(respan.url + "/api", KEY_A, spool_dir, read_timeout=READ_TIMEOUT, timeout=10)
    assert result["delivered"] == 4 and result["remaining"] == 0
    assert by_key(respan)[KEY_A] == Counter({f"child-{i}": 1 for i in range(4)})
