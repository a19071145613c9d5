"""Per-package virtual environments for the peer benchmark (benchmarks/.venvs/<impl>-openai<major>).

Each environment holds one instrumentation, the OpenTelemetry SDK and one pinned openai release,
so a peer's dependencies never meet ours. Environments are reused when their stamp matches;
the first build needs the package index, later runs do not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
VENV_ROOT = os.environ.get("RESPAN_BENCH_VENVS") or os.path.join(BENCH_DIR, ".venvs")
VERSIONS_FILE = os.path.join(VENV_ROOT, "openai-versions.json")
BASE_PYTHON = os.environ.get("RESPAN_BENCH_PYTHON") or "/root/.pyenv/versions/3.11.7/bin/python3"
if not os.path.exists(BASE_PYTHON):
    BASE_PYTHON = sys.executable

# what each span-producing peer gets besides itself: the SDK, and (installed in a second step,
# pinned to the SDK release the peer settled on, so it cannot make pip backtrack the peer) the
# OTLP protobuf encoder: the worker's exporter encodes every batch as an OTLP request would
_OTEL_PIPELINE = ["opentelemetry-sdk"]
_ENCODER = "opentelemetry-exporter-otlp-proto-common"

# environment name -> (pip requirements, distribution whose version we report, what it is)
IMPLS: dict[str, tuple[list[str], str, str]] = {
    # with the otlp extra: the "ours + the app's TracerProvider" subject runs here too
    "ours": (["-e", REPO_DIR + "[otlp]"], "respan-instrument", "respan_instrument (this repo, editable)"),
    "genai-openai": (
        ["opentelemetry-instrumentation-genai-openai", *_OTEL_PIPELINE],
        "opentelemetry-instrumentation-genai-openai",
        "official OpenTelemetry successor of openai-v2",
    ),
    "openllmetry": (
        ["opentelemetry-instrumentation-openai", *_OTEL_PIPELINE],
        "opentelemetry-instrumentation-openai",
        "Traceloop OpenLLMetry",
    ),
    "openinference": (
        ["openinference-instrumentation-openai", *_OTEL_PIPELINE],
        "openinference-instrumentation-openai",
        "Arize OpenInference",
    ),
    "respan-native": (
        # with respan-ai, as its README installs it (without it pip backtracks for minutes and
        # settles on an older release)
        ["respan-ai", "respan-instrumentation-openai", *_OTEL_PIPELINE],
        "respan-instrumentation-openai",
        "Respan's own plugin (respan-tracing based)",
    ),
}
# what is measured -> the environment it runs in; "ours+app-tp" is ours in an application that
# has its own TracerProvider (BatchSpanProcessor, OTLP-encoding exporter), as the peers run
SUBJECTS: dict[str, str] = {
    "ours": "ours",
    "ours+app-tp": "ours",
    "genai-openai": "genai-openai",
    "openinference": "openinference",
    "openllmetry": "openllmetry",
    "respan-native": "respan-native",
}
ORDER = list(SUBJECTS)
LABELS = {
    "ours": "ours, no TracerProvider",
    "ours+app-tp": "ours, app has its own TracerProvider",
    "genai-openai": "opentelemetry genai-openai",
    "openinference": "OpenInference",
    "openllmetry": "OpenLLMetry",
    "respan-native": "Respan's own plugin",
}

# used only when the index cannot be asked (offline) and nothing was resolved before
_FALLBACK_OPENAI = {2: "2.54.0", 3: "3.57.0"}


def venv_dir(impl: str, major: int) -> str:
    return os.path.join(VENV_ROOT, f"{impl}-openai{major}")


def venv_python(impl: str, major: int) -> str:
    return os.path.join(venv_dir(impl, major), "bin", "python")


def _pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.pop("PYTHONPATH", None)
    return env


def _quiet(text: str) -> str:
    """pip output without the noise this machine's pip configuration adds."""
    lines = [ln for ln in text.splitlines() if "is ignored: it is neither a file" not in ln and ln.strip()]
    return "\n".join(lines)


def openai_versions(majors: list[int], log: Any = print) -> dict[int, str]:
    """The newest openai release of each major, resolved once and kept in .venvs/openai-versions.json."""
    os.makedirs(VENV_ROOT, exist_ok=True)
    _ensure_gitignore()
    known: dict[str, str] = {}
    if os.path.exists(VERSIONS_FILE):
        with open(VERSIONS_FILE) as fh:
            known = json.load(fh)
    missing = [m for m in majors if str(m) not in known]
    if missing:
        log("resolving the newest openai release per major from the package index ...")
        found: list[str] = []
        try:
            out = subprocess.run(
                [BASE_PYTHON, "-m", "pip", "index", "versions", "openai"],
                capture_output=True,
                text=True,
                timeout=120,
                env=_pip_env(),
            ).stdout
            m = re.search(r"Available versions:\s*(.*)", out)
            found = [v.strip() for v in m.group(1).split(",")] if m else []
        except (OSError, subprocess.SubprocessError):
            found = []
        for major in missing:
            final = [v for v in found if re.fullmatch(rf"{major}\.\d+(\.\d+)?", v)]
            known[str(major)] = final[0] if final else _FALLBACK_OPENAI.get(major, f"{major}.0.0")
        with open(VERSIONS_FILE, "w") as fh:
            json.dump(known, fh, indent=1)
    return {m: known[str(m)] for m in majors}


def _ensure_gitignore() -> None:
    path = os.path.join(VENV_ROOT, ".gitignore")
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write("*\n")


def _stamp_path(impl: str, major: int) -> str:
    return os.path.join(venv_dir(impl, major), "bench-stamp.json")


def ensure_env(
    impl: str,
    major: int,
    openai_version: str,
    *,
    rebuild: bool = False,
    allow_install: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Build (or reuse) the environment; returns {"ok", "python", "error", "versions"}."""
    reqs, _, _ = IMPLS[impl]
    want = {"reqs": reqs, "openai": openai_version, "encoder": impl != "ours"}
    path = venv_dir(impl, major)
    stamp_file = _stamp_path(impl, major)
    if os.path.exists(stamp_file) and not rebuild:
        with open(stamp_file) as fh:
            stamp = json.load(fh)
        if stamp.get("want") == want:
            return {
                "ok": stamp["ok"],
                "python": venv_python(impl, major),
                "error": stamp.get("error"),
                "versions": stamp.get("versions", {}),
            }
    if os.path.exists(path) and allow_install:
        shutil.rmtree(path)  # built for something else (or --rebuild): start clean
    if not allow_install:
        return {
            "ok": False,
            "python": venv_python(impl, major),
            "error": "environment not built (--no-install)",
            "versions": {},
        }
    os.makedirs(VENV_ROOT, exist_ok=True)
    _ensure_gitignore()
    t0 = time.time()
    log(f"building {os.path.relpath(path, REPO_DIR)} (openai=={openai_version}) ...")
    error = None
    if not os.path.exists(venv_python(impl, major)):
        r = subprocess.run([BASE_PYTHON, "-m", "venv", path], capture_output=True, text=True)
        if r.returncode:
            error = "venv creation failed: " + _quiet(r.stderr)[-400:]
    if error is None:
        # the peer and openai in one resolution, so pip reports a conflict instead of silently
        # picking another openai
        cmd = [venv_python(impl, major), "-m", "pip", "install", "-q", *reqs, f"openai=={openai_version}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=_pip_env())
        if r.returncode:
            error = "pip install failed: " + _last_error(_quiet(r.stderr + "\n" + r.stdout))
    if error is None and impl != "ours":
        sdk = installed_versions(venv_python(impl, major)).get("opentelemetry-sdk")
        cmd = [
            venv_python(impl, major),
            "-m",
            "pip",
            "install",
            "-q",
            f"{_ENCODER}=={sdk}" if sdk else _ENCODER,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=_pip_env())
        if r.returncode:  # not fatal: the worker falls back to JSON encoding
            log(f"  {_ENCODER} not installed: " + _last_error(_quiet(r.stderr)))
    versions = installed_versions(venv_python(impl, major)) if error is None else {}
    ok = error is None
    with open(stamp_file, "w") as fh:
        json.dump(
            {
                "want": want,
                "ok": ok,
                "error": error,
                "versions": versions,
                "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            fh,
            indent=1,
        )
    log(f"  {'ok' if ok else 'FAILED'} in {time.time() - t0:.0f} s" + (f": {error}" if error else ""))
    return {"ok": ok, "python": venv_python(impl, major), "error": error, "versions": versions}


def _last_error(text: str) -> str:
    lines = text.strip().splitlines()
    keep = [ln for ln in lines if re.search(r"error|conflict|requires|No matching|Could not", ln, re.I)]
    return " | ".join((keep or lines)[-4:])[-600:]


def installed_versions(python: str) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60).stdout
        return json.loads(out)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}
