"""Side-by-side: caller-thread overhead per openai call, bare client vs ours vs the peer instrumentations.

    python benchmarks/bench_peers.py [--quick] [--majors 2,3] [--impls ours,openllmetry,...]

Each implementation runs in its own virtual environment (benchmarks/.venvs/<impl>-openai<major>,
built on first use from the package index, reused afterwards; git ignores the folder) with the
same pinned openai release per major. A worker (benchmarks/peers/worker.py) inside each
environment interleaves bare and instrumented rounds in one process over an in-process mock
transport (and one workload over a loopback HTTP server) and reports per-call medians. Ours
exports to a loopback Respan-compatible Collector in a separate process; the peers export
through an OpenTelemetry SDK BatchSpanProcessor into an exporter that encodes each batch as
OTLP/protobuf and discards it.

Prints a Markdown report and writes it to benchmarks/RESULTS.md (--out to change, --no-write
to skip). The first run builds the environments (about 10-20 s each); --quick afterwards takes
about two minutes, a full run under fifteen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))

import envs  # noqa: E402

WORKER = os.path.join(HERE, "peers", "worker.py")
SERVERS = os.path.join(HERE, "peers", "servers.py")
WORKLOAD_LABELS = {
    "chat": "chat, non-streamed",
    "stream50": "chat stream, 50 chunks",
    "stream1000": "chat stream, 1000 chunks",
    "embeddings": "embeddings (1536-d)",
    "chat-http": "chat over loopback HTTP",
    "image": "image (gpt-image-1, 64 KB base64)",
    "transcription": "transcription (32 KB mp3)",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running
class Servers:
    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, SERVERS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("servers did not start: " + self.proc.stderr.read()[-500:])
        urls = json.loads(line)
        self.collector, self.stub, self.control = urls["collector"], urls["stub"], urls["control"]

    def clear(self) -> None:
        req = urllib.request.Request(self.control, data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - loopback
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_worker(python: str, impl: str, args: argparse.Namespace, servers: Servers | None) -> dict[str, Any]:
    cmd = [
        python,
        WORKER,
        impl,
        "--rounds",
        str(args.rounds),
        "--phase-seconds",
        str(args.phase_seconds),
        "--workloads",
        args.workloads,
    ]
    if servers is not None:
        cmd += ["--collector", servers.collector, "--control", servers.control, "--stub", servers.stub]
        servers.clear()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONHASHSEED"] = "0"
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.worker_timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "ok": False, "error": f"worker timed out after {args.worker_timeout:.0f} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        err = r.stderr.strip().splitlines()
        return {
            "impl": impl,
            "ok": False,
            "error": f"worker exited {r.returncode}: "
            + (" | ".join(err[-3:])[-400:] if err else "no output"),
        }
    out["seconds"] = time.time() - t0
    tail = [ln for ln in r.stderr.splitlines() if ln.strip()]
    if tail:
        out["stderr_tail"] = tail[-5:]
    return out


# --------------------------------------------------------------------------- summarising
def summarise(rec: dict[str, Any]) -> dict[str, Any] | None:
    rows = [r for r in rec["rounds"] if r.get("bare") and r.get("inst")]
    if not rows:
        return None

    def med(mode: str, key: str) -> float:
        return statistics.median(r[mode][key] for r in rows)

    def paired(key_i: str, key_b: str) -> tuple[float, float]:
        ratio = statistics.median(r["inst"][key_i] / r["bare"][key_b] for r in rows)
        delta = statistics.median(r["inst"][key_i] - r["bare"][key_b] for r in rows)
        return ratio, delta

    s: dict[str, Any] = {"rounds": len(rows), "calls": rec["calls"]}
    for metric, ki, kb in (
        ("thread", "thread", "thread"),
        ("wall", "wall", "wall"),
        ("proc", "proc_flush", "proc"),
    ):
        s[metric] = {"bare": med("bare", kb), "inst": med("inst", ki)}
        s[metric]["ratio"], s[metric]["delta"] = paired(ki, kb)
    s["per_call"] = rec["delivered_inst"] / rec["inst_calls"] if rec["inst_calls"] else None
    s["bare_leak"] = rec["delivered_bare"]
    s["errors"] = rec["errors"]
    return s


def short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def cell(s: dict[str, Any] | None, metric: str) -> str:
    if s is None:
        return "—"
    m = s[metric]
    return f"{m['ratio']:.2f}× ({m['delta']:+.0f} µs)"


def per_impl_table(
    w: Any, impls: list[str], title: str, label: str, rows: list[tuple[str, list[str]]]
) -> None:
    """A Markdown table with one column per implementation: rows of (name, cells)."""
    w("")
    w(f"### {title}")
    w("")
    w(f"| {label} | " + " | ".join(impls) + " |")
    w("|---|" + "---:|" * len(impls))
    for name, cells in rows:
        w(f"| {name} | " + " | ".join(cells) + " |")


def delivered_cell(s: dict[str, Any] | None) -> str:
    if s is None or s["per_call"] is None:
        return "—"
    flag = "" if abs(s["per_call"] - 1) < 0.005 else " ⚠"
    leak = f", {s['bare_leak']} while uninstrumented ⚠" if s["bare_leak"] else ""
    return f"{s['per_call']:.2f}{flag}{leak}"


def probe_cell(v: float | str | None) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return "✗ " + short(v, 50)
    return f"{v:.2f}" + ("" if abs(v - 1) < 0.005 else " ⚠")


def render(
    results: dict[int, dict[str, dict[str, Any]]],
    args: argparse.Namespace,
    versions: dict[int, str],
    elapsed: float,
) -> str:
    impls = [i for i in envs.ORDER if i in args.impls.split(",")]
    kinds = [k for k in args.workloads.split(",") if k]
    out: list[str] = []
    w = out.append
    w("# Peer benchmark: time per openai call (caller-thread CPU, wall clock, whole-process CPU)")
    w("")
    w(
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; mode: {'--quick' if args.quick else 'full'} "
        f"({args.rounds} interleaved rounds, ~{args.phase_seconds:.2f} s per phase; run took {elapsed / 60:.1f} min)"
    )
    w(f"- machine: {machine()}")
    w(f"- respan_instrument: {git_state()} (installed editable in the `ours` environments)")
    w("- command: `python benchmarks/bench_peers.py" + (" --quick" if args.quick else "") + "`")
    w("")
    w(
        "Method: each package runs in its own venv with the same openai release. In one process the worker "
        "alternates a bare phase and an instrumented phase per workload and round (order flipped every round; "
        "instrument() before, uninstrument() after each instrumented phase; a fresh client per phase; "
        "after a few warm-up calls the instrumented phase flushes once, so one-time start-up work (threads, "
        "spool files, the exporter's HTTP client) is not billed to the calls measured). "
        "Cells are the median over rounds of instrumented / bare of the same round, and in brackets the median "
        "difference per call. **Caller-thread CPU** (`time.thread_time`) is the cost the calling thread pays; "
        "**wall** also contains background threads holding the GIL; **process CPU** includes delivering the "
        "phase's telemetry (flush) in every thread of the worker. Ours exports request logs over loopback HTTP "
        "to a Collector in another process; peers get TracerProvider + BatchSpanProcessor (defaults) + an "
        "exporter that encodes each batch to OTLP/protobuf and discards it. Mock transport for all workloads "
        "except *chat over loopback HTTP* (OpenAIStub in a separate process, real sockets). "
        "Budgets (SPEC §9): chat ≤ 1.05×, 50-chunk stream ≤ 1.02× caller-thread; process CPU ≤ 1.25×."
    )
    for major in sorted(results):
        res = results[major]
        w("")
        w(f"## openai {versions[major]}")
        for metric, title in (
            ("thread", "Caller-thread CPU per call (ratio to bare, extra µs)"),
            ("wall", "Wall clock per call"),
            ("proc", "Process CPU per call including delivery of the telemetry"),
        ):
            w("")
            w(f"### {title}")
            w("")
            w("| workload | bare µs | " + " | ".join(impls) + " |")
            w("|---|---:|" + "---:|" * len(impls))
            for kind in kinds:
                bares = [
                    r["summary"][kind][metric]["bare"]
                    for r in res.values()
                    if r.get("ok") and r.get("summary", {}).get(kind)
                ]
                bare = f"{statistics.median(bares):.0f}" if bares else "—"
                cells = []
                for impl in impls:
                    r = res.get(impl, {})
                    if not r.get("ok"):
                        cells.append("✗ " + short(r.get("error", "not run"), 45))
                    else:
                        cells.append(cell(r.get("summary", {}).get(kind), metric))
                w(f"| {WORKLOAD_LABELS.get(kind, kind)} | {bare} | " + " | ".join(cells) + " |")

        probe_names: list[str] = []
        for r in res.values():
            for k in r.get("probes", {}):
                if k not in probe_names:
                    probe_names.append(k)
        if probe_names:
            per_impl_table(
                w,
                impls,
                "Streams left early: records delivered per stream after flush (not timed; 1.00 expected)",
                "stream use",
                [
                    (name, [probe_cell(res.get(i, {}).get("probes", {}).get(name)) for i in impls])
                    for name in probe_names
                ],
            )
        w("")
        w("### Environments and notes")
        w("")
        w("| package | version | opentelemetry-sdk | bare chat µs (thread) | worker s | notes |")
        w("|---|---|---|---:|---:|---|")
        for impl in impls:
            r = res.get(impl, {})
            v = r.get("versions", {})
            pkg = envs.IMPLS[impl][1]
            notes = list(r.get("notes", []))
            if r.get("forced"):
                notes.append("ran only with skip_dep_check=True (declares no support for this openai)")
            if not r.get("ok"):
                notes.insert(0, "FAILED: " + r.get("error", "not run"))
            for kind, s in r.get("summary", {}).items():
                if s and s["errors"]:
                    notes.append(f"{kind}: " + "; ".join(s["errors"][:2]))
            if r.get("span_names"):
                notes.append("span names: " + ", ".join(f"{k}×{n}" for k, n in r["span_names"].items()))
            if r.get("span_events"):
                notes.append(
                    f"span events exported: {r['span_events']} ("
                    + ", ".join(f"{k}×{n}" for k, n in r.get("event_names", {}).items())
                    + ")"
                )
            chat = r.get("summary", {}).get("chat")
            bare_chat = f"{chat['thread']['bare']:.0f}" if chat else "—"
            w(
                f"| {pkg} | {v.get('impl', '—')} | {v.get('opentelemetry-sdk', '—')} | {bare_chat} | "
                f"{r.get('seconds', 0):.0f} | " + "; ".join(short(n, 300) for n in notes) + " |"
            )
    return "\n".join(out) + "\n"


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", envs.REPO_DIR, "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                envs.REPO_DIR,
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "respan_instrument",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"commit {head}" + (" + uncommitted changes in respan_instrument/" if dirty else "")


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.platform()}, {model}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()} ({envs.BASE_PYTHON})"
    )


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds, short phases (about 2 min)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--phase-seconds", type=float)
    parser.add_argument("--majors", default="2,3", help="openai majors to run (newest release of each)")
    parser.add_argument("--impls", default=",".join(envs.ORDER))
    parser.add_argument("--workloads", default="chat,stream50,stream1000,embeddings,chat-http")
    parser.add_argument("--no-install", action="store_true", help="use only environments already built")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the environments")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", help="also write the raw worker results here")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.phase_seconds = args.phase_seconds or (0.1 if args.quick else 0.35)
    args.worker_timeout = 150 if args.quick else 400
    majors = [int(m) for m in args.majors.split(",") if m]
    wanted = [i for i in envs.ORDER if i in args.impls.split(",")]
    t_start = time.time()

    versions = envs.openai_versions(majors, log=log)
    built: dict[int, dict[str, dict[str, Any]]] = {}
    for major in majors:
        built[major] = {}
        for impl in wanted:
            built[major][impl] = envs.ensure_env(
                impl, major, versions[major], rebuild=args.rebuild, allow_install=not args.no_install, log=log
            )

    # the servers need respan_instrument: any environment of ours that built
    servers = None
    server_python = next(
        (built[m]["ours"]["python"] for m in majors if "ours" in built[m] and built[m]["ours"]["ok"]), None
    )
    if server_python is None:
        ours_env = envs.ensure_env(
            "ours", majors[0], versions[majors[0]], allow_install=not args.no_install, log=log
        )
        server_python = ours_env["python"] if ours_env["ok"] else None
    if server_python is not None:
        try:
            servers = Servers(server_python)
        except (OSError, RuntimeError, ValueError) as exc:
            log(f"servers failed to start ({exc}); no collector, no loopback HTTP workload")

    t_bench = time.time()
    results: dict[int, dict[str, dict[str, Any]]] = {}
    try:
        for major in majors:
            results[major] = {}
            for impl in wanted:
                env = built[major][impl]
                if not env["ok"]:
                    results[major][impl] = {"impl": impl, "ok": False, "error": env["error"]}
                    log(f"openai {versions[major]} {impl}: skipped ({short(env['error'], 100)})")
                    continue
                log(f"openai {versions[major]} {impl}: running ...")
                r = run_worker(env["python"], impl, args, servers)
                if r.get("ok"):
                    r["summary"] = {k: summarise(v) for k, v in r.get("workloads", {}).items()}
                    chat = r["summary"].get("chat")
                    log(
                        f"  done in {r['seconds']:.0f} s"
                        + (f"; chat caller-thread {chat['thread']['ratio']:.2f}×" if chat else "")
                    )
                else:
                    log(f"  FAILED: {short(r.get('error'), 200)}")
                results[major][impl] = r
    finally:
        if servers is not None:
            servers.stop()
    log(f"benchmark phase: {(time.time() - t_bench) / 60:.1f} min")

    report = render(results, args, versions, time.time() - t_start)
    print(report)
    if not args.no_write:
        with open(args.out, "w") as fh:
            fh.write(report)
        log(f"written to {os.path.relpath(args.out)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({str(k): v for k, v in results.items()}, fh, indent=1)


if __name__ == "__main__":
    main()
