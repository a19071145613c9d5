"""Import time: `import` + `instrument()` on top of `import openai`, ours and the peers.

Each is measured in a fresh process of its package's environment, the median of --runs
processes after one that warms the file cache and writes bytecode. For ours the measured step is
`import respan_instrument; respan_instrument.instrument(api_key=..., base_url=...)`; for a peer it
is what its users write: import the OpenTelemetry SDK, build a TracerProvider with a
BatchSpanProcessor, import the instrumentor and instrument(). Budget (SPEC §9): ours ≤ 50 ms.
--importtime adds the slowest modules our import pulls in (python -X importtime) and where
instrument() spends its time (cProfile), to guide work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "peers")]

import envs  # noqa: E402
from common import header, log  # noqa: E402

_PRE = """
import json, os, sys, time
t0 = time.perf_counter()
import openai
t1 = time.perf_counter()
"""
_POST = """
t3 = time.perf_counter()
print(json.dumps({"openai_ms": (t1 - t0) * 1e3, "import_ms": (t2 - t1) * 1e3, "instrument_ms": (t3 - t2) * 1e3}))
"""
_OURS = """
import respan_instrument
t2 = time.perf_counter()
respan_instrument.instrument(api_key="bench", base_url="http://127.0.0.1:9/api")
"""
_PEER = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
class _Null(SpanExporter):
    def export(self, spans): return SpanExportResult.SUCCESS
{import_line}
t2 = time.perf_counter()
tp = TracerProvider(); tp.add_span_processor(BatchSpanProcessor(_Null())); trace.set_tracer_provider(tp)
{instrument_line}
"""
_PEERS = {
    "genai-openai": (
        "from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor",
        "OpenAIInstrumentor().instrument(tracer_provider=tp)",
    ),
    "openllmetry": (
        "from opentelemetry.instrumentation.openai import OpenAIInstrumentor",
        "OpenAIInstrumentor().instrument(tracer_provider=tp)",
    ),
    "openinference": (
        "from openinference.instrumentation.openai import OpenAIInstrumentor",
        "OpenAIInstrumentor().instrument(tracer_provider=tp)",
    ),
    "respan-native": (
        "from respan_instrumentation_openai import OpenAIInstrumentor",
        "OpenAIInstrumentor().activate()",
    ),
}


def snippet(impl: str) -> str:
    if impl == "ours":
        return _PRE + _OURS + _POST
    imp, inst = _PEERS[impl]
    # the SDK import counts as the peer's import: its users need it, ours brings its own
    return _PRE + _PEER.replace("{import_line}", imp).replace("{instrument_line}", inst) + _POST


def measure(python: str, impl: str, runs: int) -> dict[str, float] | str:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages have their bytecode compiled
    env.pop("PYTHONPATH", None)
    env["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-bench-spool-")
    code = snippet(impl)
    rows = []
    for i in range(runs + 1):
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        if r.returncode:
            return "failed: " + " | ".join(r.stderr.strip().splitlines()[-2:])[-300:]
        if i:  # the first run warms the OS file cache and writes .pyc files
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(row[k] for row in rows) for k in rows[0]}


def importtime(python: str, top: int = 15) -> list[str]:
    """Slowest top-level imports made after `import openai` by `import respan_instrument`."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages have their bytecode compiled
    env.pop("PYTHONPATH", None)
    r = subprocess.run(
        [python, "-X", "importtime", "-c", "import openai\nimport respan_instrument"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    rows, after = [], False
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:") :].split("|")]
        if not parts[0].isdigit():
            continue
        self_us, cum_us, name = int(parts[0]), int(parts[1]), parts[2]
        if name == "openai" and not after:
            after = True
            continue
        if after:
            depth = (len(name) - len(name.lstrip())) // 2
            rows.append((cum_us, self_us, depth, name.strip()))
    # direct children of our import and the heaviest modules anywhere under it
    tops = sorted((r for r in rows if r[2] <= 1), reverse=True)[:top]
    return [f"{c / 1e3:7.1f} ms cumulative {s / 1e3:6.1f} ms self  {'  ' * d}{n}" for c, s, d, n in tops]


_PROFILE_INSTRUMENT = """
import cProfile, io, os, pstats, re
import openai, respan_instrument
p = cProfile.Profile(); p.enable()
respan_instrument.instrument(api_key="bench", base_url="http://127.0.0.1:9/api")
p.disable()
st = pstats.Stats(p)
rows = [(ct, nc, f"{re.sub(r'.*/(site-packages|respan_instrument)/', '', fn)}:{ln}({name})")
        for (fn, ln, name), (cc, nc, tt, ct, callers) in st.stats.items() if "importlib" not in fn
        and not name.startswith("<built-in") and not name.startswith("<method")]
for ct, nc, name in sorted(rows, reverse=True)[:{top}]:
    print(f"{ct * 1e3:7.1f} ms  {name}")
"""


def profile_instrument(python: str, top: int = 12) -> list[str]:
    """Where instrument() spends its time on the caller's thread (cProfile, one run)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages have their bytecode compiled
    env.pop("PYTHONPATH", None)
    env["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-bench-spool-")
    r = subprocess.run(
        [python, "-c", _PROFILE_INSTRUMENT.replace("{top}", str(top))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return r.stdout.splitlines() or r.stderr.splitlines()[-3:]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="fresh processes per subject (10; --quick 3)")
    parser.add_argument("--majors", default="3", help="openai majors (the newest release of each)")
    parser.add_argument("--impls", default=",".join(envs.IMPLS), help="environments measured")
    parser.add_argument("--importtime", action="store_true", help="also where our import's time goes")
    parser.add_argument("--no-install", action="store_true", help="use only environments already built")


def run(args: argparse.Namespace) -> str:
    started = time.time()
    runs = args.runs or (3 if args.quick else 10)
    majors = [int(m) for m in args.majors.split(",") if m]
    versions = envs.openai_versions(majors, log=log)
    rows = [
        "| openai | package | import openai | + import (peers: + OTel SDK) | + instrument() | on top of openai |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ours_python = None
    for major in majors:
        for impl in [i for i in envs.IMPLS if i in args.impls.split(",")]:
            env = envs.ensure_env(impl, major, versions[major], allow_install=not args.no_install, log=log)
            if not env["ok"]:
                rows.append(f"| {versions[major]} | {impl} | — | — | — | ✗ {env['error'][:80]} |")
                continue
            if impl == "ours" and ours_python is None:
                ours_python = env["python"]
            log(f"openai {versions[major]} {impl}: {runs + 1} fresh processes ...")
            m = measure(env["python"], impl, runs)
            if isinstance(m, str):
                rows.append(f"| {versions[major]} | {impl} | — | — | — | ✗ {m[:120]} |")
                continue
            total = m["import_ms"] + m["instrument_ms"]
            budget = " (budget 50)" if impl == "ours" else ""
            rows.append(
                f"| {versions[major]} | {envs.IMPLS[impl][1]} | {m['openai_ms']:.0f} | {m['import_ms']:.1f} | "
                f"{m['instrument_ms']:.1f} | **{total:.1f}**{budget} |"
            )
    lines = [
        "## Import time: import + instrument() on top of `import openai`",
        "",
        *header(
            "python benchmarks/run.py import" + (" --quick" if args.quick else ""),
            "openai " + " / ".join(versions[m] for m in majors) + f"; median of {runs} fresh processes "
            "(after one warm-up run); times in ms",
            started,
        ),
        "",
        "Method: " + " ".join(__doc__.split("\n\n", 1)[1].split()),  # type: ignore[union-attr]
        "",
        *rows,
    ]
    if args.importtime and ours_python:
        lines += [
            "",
            "Slowest imports under `import respan_instrument` (after `import openai`; one run):",
            "",
            "```",
        ]
        lines += importtime(ours_python)
        lines += [
            "```",
            "",
            "instrument() on the caller's thread, cumulative (cProfile, one run):",
            "",
            "```",
        ]
        lines += profile_instrument(ours_python)
        lines += ["```"]
    return "\n".join(lines) + "\n"
