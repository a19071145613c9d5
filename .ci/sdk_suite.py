"""The `openai` SDK's own offline tests, from the sdist of the installed version, run bare and
under our instrumentation (tests/sdk_plugin.py: lean, and with a TracerProvider). A test that
passes bare and fails instrumented fails this script: the app must see exactly what the SDK
does. Tests that fail bare (a test dependency newer than the SDK's pin) say nothing about us
and are only counted.

Run with the Python of the environment under test, from the repository root:
    .ci/venv-openai3/bin/python .ci/sdk_suite.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the SDK's conftest and the selected tests import beyond the SDK and pytest (each with
# no dependencies of its own beyond these and what the environment has): pinned, installed
# into a directory of their own so the environment under test is left as it was.
DEPS = (
    "pytest-asyncio==1.5.0",
    "respx==0.23.1",
    "inline-snapshot==0.37.0",
    "rich==15.0.0",
    "markdown-it-py==4.3.0",
    "mdurl==0.1.2",
    "pygments==2.21.0",
    "asttokens==3.0.2",
    "executing==2.3.0",
    "dirty-equals==0.11",
)
# Offline tests (the api_resources tests need the SDK's mock server, which is not offline):
# the client, streaming, raw and legacy responses, the HTTP library's own tests, and the
# `.parse()` / `.stream()` helpers. A file an SDK version lacks is skipped.
SELECTED = (
    "tests/test_client.py",
    "tests/test_streaming.py",
    "tests/test_response.py",
    "tests/test_legacy_response.py",
    "tests/test_httpx2.py",
    "tests/test_httpx2_base.py",
    "tests/test_httpx2_respx.py",
    "tests/test_httpx2_workload.py",
    "tests/test_httpx2_decompression.py",
    "tests/test_sse_framing.py",
    "tests/test_stream_mode.py",
    "tests/lib/chat/test_completions.py",
    "tests/lib/responses/test_responses.py",
)
MODES = ("bare", "lean", "traced")


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _prepare(work: Path, version: str) -> Path:
    source = work / f"openai-{version}"
    if not (source / "tests").is_dir():
        pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, "download", "--no-binary", ":all:", "--no-deps", f"openai=={version}", "-d", str(work)],
            check=True,
        )
        with tarfile.open(work / f"openai-{version}.tar.gz") as sdist:
            members = [
                m
                for m in sdist.getmembers()
                if m.name.startswith((f"openai-{version}/tests/", f"openai-{version}/pyproject.toml"))
            ]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            sdist.extractall(work, members=members, **safe)
    deps = work / "deps"
    if not deps.is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(deps),
                *DEPS,
            ],
            check=True,
        )
    return source


def _outcomes(report: Path) -> dict[str, str]:
    """test id -> passed / failed / skipped, from a JUnit XML report."""
    out: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        out[name] = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
    return out


def main() -> int:
    import openai  # the version under test: the environment's own

    started = time.monotonic()
    work = ROOT / ".ci" / f"sdk-suite-openai{openai.__version__.split('.')[0]}"
    work.mkdir(parents=True, exist_ok=True)
    source = _prepare(work, openai.__version__)
    selected = [path for path in SELECTED if (source / path).is_file()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPAN_", "OPENAI_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(work / "deps"), str(ROOT / "tests")])
    reports = Path(tempfile.mkdtemp(prefix="sdk-suite-"))
    runs = {}
    for mode in MODES:  # at once: the three runs are independent
        plugin = [] if mode == "bare" else ["-p", "sdk_plugin"]
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
            *plugin,
            f"--junit-xml={reports / mode}.xml",
            *selected,
        ]
        log = open(reports / f"{mode}.log", "w")  # noqa: SIM115 - closed below
        runs[mode] = (
            subprocess.Popen(
                command,
                cwd=source,
                env={**env, "RESPAN_SDK_SUITE": mode},
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            log,
        )
    for process, log in runs.values():
        process.wait()
        log.close()
    outcomes = {mode: _outcomes(reports / f"{mode}.xml") for mode in MODES}
    bare = outcomes["bare"]
    status = 0
    say(f"=== openai {openai.__version__}: the SDK's own tests ({len(selected)} files)")
    for mode in MODES:
        counts = {k: list(outcomes[mode].values()).count(k) for k in ("passed", "failed", "skipped")}
        lines = (reports / f"{mode}.log").read_text().splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("respan_instrument (")), None)
        summary = (
            [] if at is None else [lines[at], *(x for x in lines[at + 1 : at + 11] if x.startswith("  "))]
        )
        say(f"  {mode:6} {counts} {summary[0] if summary else ''}")
        for line in summary[1:]:
            say(f"    {line.strip()[:200]}")
        if mode == "bare":
            continue
        if not summary or " 0 logs delivered" in summary[0]:
            say(f"  {mode}: the plugin logged nothing: the run did not test us")
            status = 1
        broken = sorted(
            t for t, result in bare.items() if result == "passed" and outcomes[mode].get(t) != "passed"
        )
        for test in broken:
            say(f"  FAILS ONLY INSTRUMENTED ({mode}): {test}")
            status = 1
        if broken:
            say((reports / f"{mode}.log").read_text()[-6000:])
    say(f"  took {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
