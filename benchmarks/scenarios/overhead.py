"""Overhead: the bare client, ours and the peers, interleaved in one run (SPEC §9, issue 32).

Every subject runs in the virtual environment of its package (benchmarks/.venvs/<env>-openai<N>,
built from the package index on first use, reused afterwards), all with the same openai release.
Each environment has a bare worker process (never instrumented) and each subject an instrumented
one (instrumented once at start, as a deployed application is, never uninstrumented), all started
and warmed up before the first round and idle while another runs. Then, round after round and
workload after workload, every subject runs one bare phase and one instrumented phase next to
each other (their order flipped every other subject and round, the subjects' order rotated every
round), so drift of the machine hits bare and instrumented alike; one phase runs at a time.

A phase is N calls in a loop over an in-process mock transport (2,000 non-streamed chats, 300
50-chunk streams) after three unmeasured calls whose telemetry is delivered first. Per phase:
**wall** of the loop, **caller CPU** (the calling thread's), **process CPU** (every thread of the
worker, up to the moment all of the phase's telemetry is delivered: for ours when `flush()`
returned and the Collector, in another process, holds every log; for the peers when the
TracerProvider's `force_flush()` returned), and the caller's **p50/p99 latency** per call.
Ratios are instrumented / bare of the same subject and round; the table gives their median over
rounds and, for process CPU, a 90% interval for that median (order statistics of the rounds'
ratios, which need no assumption about how they are spread: with the default 15 rounds the 4th to
the 12th; with 7 it would be their whole range). On a shared VM single rounds swing by ±30%: a
budget is shown to hold when the interval's upper end is within it. Peers and "ours, app has its
own TracerProvider" export through an OpenTelemetry SDK TracerProvider + BatchSpanProcessor
(defaults) whose exporter encodes every batch as OTLP/protobuf and drops it; ours posts request
logs over loopback HTTP (rate limit off: our CPU, not Respan's limit, is measured).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "peers")]

import envs  # noqa: E402
from common import header, log  # noqa: E402

WORKER = os.path.join(HERE, "peers", "worker.py")
SERVERS = os.path.join(HERE, "peers", "servers.py")
# workload -> (label, calls per phase in a full run)
WORKLOADS: dict[str, tuple[str, int]] = {
    "chat": ("chat", 2000),
    "stream50": ("50-chunk stream", 300),
    "stream1000": ("1000-chunk stream", 20),
    "embeddings": ("embeddings (1536-d)", 2000),
    "chat-http": ("chat over loopback HTTP", 1000),
    "image": ("image (64 KB base64)", 1000),
    "transcription": ("transcription (32 KB upload)", 1000),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser
    group.add_argument("--rounds", type=int, help="interleaved rounds (15; --quick 2)")
    group.add_argument(
        "--calls-scale", type=float, help="calls per phase relative to 2,000 chats / 300 streams"
    )
    group.add_argument("--subjects", default=",".join(envs.ORDER), help="what is measured against bare")
    group.add_argument("--workloads", default="chat,stream50", help=",".join(WORKLOADS))
    group.add_argument("--major", type=int, default=3, help="openai major (its newest release)")
    group.add_argument("--no-install", action="store_true", help="use only environments already built")
    group.add_argument("--rebuild", action="store_true", help="rebuild the environments")
    group.add_argument("--json", help="also write every phase's raw measures here")
    group.add_argument(
        "--readme",
        action="store_true",
        help="also put the summary table into README.md (between its markers)",
    )


# --------------------------------------------------------------------------- processes
class Servers:
    """Collector (where ours delivers), OpenAI stub and a control endpoint, in their own process."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, SERVERS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("servers did not start: " + self.proc.stderr.read()[-500:])  # type: ignore[union-attr]
        urls = json.loads(line)
        self.collector, self.stub, self.control = urls["collector"], urls["stub"], urls["control"]

    def clear(self) -> None:
        req = urllib.request.Request(self.control, data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - loopback
            pass

    def stop(self) -> None:
        _end(self.proc)


def _end(proc: subprocess.Popen[str]) -> None:
    """End a helper process that reads its stdin: close it, then kill it if it lingers."""
    if proc.poll() is None:
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Worker:
    """One worker process (peers/worker.py) in a subject's environment, asked phase by phase."""

    def __init__(
        self, python: str, subject: str, role: str, servers: Servers | None, workloads: str, warmup: float
    ) -> None:
        cmd = [python, WORKER, subject, "--role", role, "--workloads", workloads, "--warmup", str(warmup)]
        if servers is not None:
            cmd += ["--collector", servers.collector, "--control", servers.control, "--stub", servers.stub]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env["PYTHONHASHSEED"] = "0"
        env["RESPAN_BULK_PER_MINUTE"] = str(10**9)  # our CPU is measured, not Respan's rate limit
        env["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-bench-spool-")
        for name in ("RESPAN_API_KEY", "RESPAN_BASE_URL", "RESPAN_EXPORT", "OTEL_SDK_DISABLED"):
            env.pop(name, None)
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.label = f"{subject} ({role})"
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env
        )
        self.head = self._read(300)

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stderr.seek(0)
            tail = [ln for ln in self.stderr.read().splitlines() if ln.strip()][-3:]
            why = "timed out" if not ready else f"exited {self.proc.poll()}"
            return {"ready": False, "error": f"worker {why}: " + " | ".join(tail)[-400:]}
        return dict(json.loads(line))

    def ask(self, payload: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
        if self.proc.poll() is not None:
            return {"error": f"worker exited {self.proc.returncode}"}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self) -> None:
        _end(self.proc)


# --------------------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> str:
    started = time.time()
    rounds = args.rounds or (2 if args.quick else 15)
    scale = args.calls_scale or (0.25 if args.quick else 1.0)
    warmup = 0.5 if args.quick else 1.5
    subjects = [s for s in envs.ORDER if s in args.subjects.split(",")]
    kinds = [k for k in args.workloads.split(",") if k in WORKLOADS]
    calls = {k: max(5, int(WORKLOADS[k][1] * scale)) for k in kinds}
    version = envs.openai_versions([args.major], log=log)[args.major]

    built: dict[str, dict[str, Any]] = {}
    for env_name in dict.fromkeys(envs.SUBJECTS[s] for s in subjects):
        built[env_name] = envs.ensure_env(
            env_name, args.major, version, rebuild=args.rebuild, allow_install=not args.no_install, log=log
        )
    if "ours" not in built:
        built["ours"] = envs.ensure_env(
            "ours", args.major, version, allow_install=not args.no_install, log=log
        )
    servers = Servers(built["ours"]["python"]) if built["ours"]["ok"] else None

    bare: dict[str, Worker] = {}
    inst: dict[str, Worker] = {}
    failed: dict[str, str] = {}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {s: {k: [] for k in kinds} for s in subjects}
    try:
        for s in subjects:
            env_name = envs.SUBJECTS[s]
            if not built[env_name]["ok"]:
                failed[s] = f"environment: {built[env_name]['error']}"
                continue
            python = built[env_name]["python"]
            if env_name not in bare:
                log(f"starting the bare worker of {env_name} ...")
                bare[env_name] = Worker(python, env_name, "bare", servers, ",".join(kinds), warmup)
            log(f"starting {s} ...")
            inst[s] = Worker(python, s, "inst", servers, ",".join(kinds), warmup)
            for w in (bare[env_name], inst[s]):
                if not w.head.get("ready"):
                    failed[s] = f"{w.label}: {w.head.get('error')}"
        live = [s for s in subjects if s not in failed]
        log(f"workers ready after {time.time() - started:.0f} s; {rounds} rounds of {calls}")
        for r in range(rounds):
            order = live[r % len(live) :] + live[: r % len(live)] if live else []
            for kind in kinds:
                for j, s in enumerate(order):
                    pair = [("bare", bare[envs.SUBJECTS[s]]), ("inst", inst[s])]
                    if (r + j) % 2:
                        pair.reverse()
                    row = {mode: w.ask({"phase": kind, "calls": calls[kind]}) for mode, w in pair}
                    results[s][kind].append(row)
            log(f"round {r + 1}/{rounds} done at {(time.time() - started) / 60:.1f} min")
        stats = {s: inst[s].ask({"stats": True}) for s in live}
    finally:
        for w in [*bare.values(), *inst.values()]:
            w.close()
        if servers is not None:
            servers.stop()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "heads": {s: w.head for s, w in inst.items()}}, fh, indent=1)

    heads = {s: inst[s].head for s in inst}
    command = "python benchmarks/run.py overhead" + (" --quick" if args.quick else "")
    lines = [
        "## Overhead: bare client, ours and the peers in one run",
        "",
        *header(
            command,
            f"openai {version}, Python {_python_of(heads)}; {rounds} interleaved rounds; calls per phase: "
            + ", ".join(f"{WORKLOADS[k][0]} {calls[k]:,}" for k in kinds),
            started,
        ),
        "",
        "Method: " + " ".join(__doc__.split("\n\n", 1)[1].split()),  # type: ignore[union-attr]
        "",
    ]
    table, details = render(results, kinds, subjects, heads, stats, failed)
    lines += table + details
    if args.readme:
        provenance = (
            f"`{command}`, {time.strftime('%Y-%m-%d', time.gmtime(started))}, "
            f"openai {version}, Python {_python_of(heads)}, {os.cpu_count()} cores, {rounds} interleaved "
            f"rounds, load average {os.getloadavg()[0]:.1f} at the end; medians of per-round ratios to the "
            "bare client; detail in `benchmarks/RESULTS.md`."
        )
        readme(table[4:], provenance)
    return "\n".join(lines) + "\n"


README = os.path.join(os.path.dirname(HERE), "README.md")
MARKS = (
    "<!-- overhead table: written by benchmarks/run.py overhead --readme -->",
    "<!-- end of overhead table -->",
)


def readme(table: list[str], provenance: str) -> None:
    """Replace the table between the README's markers (the markers stay)."""
    with open(README) as fh:
        text = fh.read()
    start, end = text.find(MARKS[0]), text.find(MARKS[1])
    if start < 0 or end < start:
        log(f"README.md has no {MARKS[0]!r} ... {MARKS[1]!r}: not updated")
        return
    block = "\n".join([MARKS[0], "", provenance, "", *table, "", ""])
    with open(README, "w") as fh:
        fh.write(text[:start] + block + text[end:])
    log("README.md: overhead table updated")


def _python_of(heads: dict[str, dict[str, Any]]) -> str:
    for h in heads.values():
        if h.get("versions", {}).get("python"):
            return str(h["versions"]["python"])
    return "?"


# --------------------------------------------------------------------------- summarising
def summarise(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Medians over rounds of one subject's workload; None when no round measured both."""
    ok = [r for r in rows if "wall" in r.get("bare", {}) and "wall" in r.get("inst", {})]
    if not ok:
        return None

    def med(values: Any) -> float:
        return float(statistics.median(list(values)))

    out: dict[str, Any] = {"rounds": len(ok)}
    for key in ("wall", "proc", "thread"):
        ratios = [r["inst"][key] / r["bare"][key] for r in ok]
        out[key] = {
            "ratio": med(ratios),
            "low": min(ratios),
            "high": max(ratios),
            "ci": median_interval(ratios),
            "delta": med(r["inst"][key] - r["bare"][key] for r in ok),
            "bare": med(r["bare"][key] for r in ok),
        }
    for key in ("p50", "p99"):
        out[key] = {
            "bare": med(r["bare"][key] for r in ok),
            "inst": med(r["inst"][key] for r in ok),
            "delta": med(r["inst"][key] - r["bare"][key] for r in ok),
        }
    out["background"] = med(
        (r["inst"]["proc"] - r["inst"]["thread"]) - (r["bare"]["proc"] - r["bare"]["thread"]) for r in ok
    )
    errors = [f"round {i + 1}: {r[m]['error']}" for i, r in enumerate(rows) for m in r if r[m].get("error")]
    out["errors"] = errors
    return out


def median_interval(values: list[float], level: float = 0.9) -> tuple[float, float]:
    """An interval that holds the median of what `values` are drawn from with probability at
    least `level`: the j-th smallest and j-th largest value, j as large as the binomial
    distribution (each value is below the median with probability 1/2) allows."""
    xs = sorted(values)
    n = len(xs)
    j = 0
    below = 0.0  # P(at most i values fall below the median)
    for i in range(n // 2):
        below += math.comb(n, i) / 2**n
        if 2 * below > 1 - level:
            break
        j = i + 1
    return (xs[j - 1], xs[n - j]) if j else (xs[0], xs[-1])


def _interval(m: dict[str, Any]) -> str:
    return f"{m['ci'][0]:.2f}–{m['ci'][1]:.2f}"


def _ratio(s: dict[str, Any] | None, key: str) -> str:
    if s is None:
        return "—"
    if key != "proc":
        return f"{s[key]['ratio']:.2f}×"
    return f"{s[key]['ratio']:.2f}× [{_interval(s[key])}]"


def _p99(s: dict[str, Any] | None) -> str:
    if s is None:
        return "—"
    return f"{s['p99']['inst'] / 1e3:.2f} ms ({s['p99']['delta'] / 1e3:+.2f})"


def render(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    kinds: list[str],
    subjects: list[str],
    heads: dict[str, dict[str, Any]],
    stats: dict[str, dict[str, Any]],
    failed: dict[str, str],
) -> tuple[list[str], list[str]]:
    """(the summary table under its title, the detail tables)."""
    summary = {s: {k: summarise(results[s][k]) for k in kinds} for s in subjects}
    label = {k: WORKLOADS[k][0] for k in kinds}
    lines = [
        "### Per call against the bare client (medians over rounds)",
        "",
        "Process CPU includes delivering the phase's telemetry; in square brackets a 90% interval for "
        "its median ratio. p99 is the caller's, in brackets its difference from the bare process's "
        "p99 in the same rounds.",
        "",
    ]
    cols = [(k, "proc", "process CPU") for k in kinds] + [(k, "thread", "caller CPU") for k in kinds]
    cols += [(k, "wall", "wall") for k in kinds]
    lines.append(
        "| subject | "
        + " | ".join(f"{label[k]} {what}" for k, _, what in cols)
        + " | "
        + " | ".join(f"{label[k]} p99" for k in kinds)
        + " |"
    )
    lines.append("|---|" + "---:|" * (len(cols) + len(kinds)))
    bare_cells = []
    for k, key, _ in cols:
        values = [summary[s][k][key]["bare"] for s in subjects if summary[s].get(k)]
        bare_cells.append(f"{statistics.median(values):,.0f} µs" if values else "—")
    for k in kinds:
        values = [summary[s][k]["p99"]["bare"] for s in subjects if summary[s].get(k)]
        bare_cells.append(f"{statistics.median(values) / 1e3:.2f} ms" if values else "—")
    lines.append("| bare client | " + " | ".join(bare_cells) + " |")
    for s in subjects:
        if s in failed:
            lines.append(f"| {envs.LABELS[s]} | " + " | ".join(["✗"] * (len(cols) + len(kinds))) + " |")
            continue
        cells = [_ratio(summary[s][k], key) for k, key, _ in cols] + [_p99(summary[s][k]) for k in kinds]
        lines.append(f"| {envs.LABELS[s]} | " + " | ".join(cells) + " |")
    table, lines = lines, []

    for k in kinds:
        lines += [
            "",
            f"### {label[k]}: detail",
            "",
            "| subject | bare µs (its environment) | process CPU ×bare (90% interval of the median; "
            "range over rounds; extra µs) "
            "| caller CPU ×bare (extra µs) | wall ×bare (extra µs) | background µs/call | p50 ms bare → subject "
            "| p99 ms bare → subject |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in subjects:
            m = summary[s].get(k)
            if m is None:
                lines.append(
                    f"| {envs.LABELS[s]} | — | ✗ {failed.get(s, 'no round measured')[:120]} | | | | | |"
                )
                continue
            p, t, w = m["proc"], m["thread"], m["wall"]
            lines.append(
                f"| {envs.LABELS[s]} | {p['bare']:,.0f} | {p['ratio']:.2f}× ({_interval(p)}; "
                f"{p['low']:.2f}–{p['high']:.2f}; "
                f"{p['delta']:+,.0f}) | {t['ratio']:.2f}× ({t['delta']:+,.0f}) | {w['ratio']:.2f}× "
                f"({w['delta']:+,.0f}) | {m['background']:,.0f} | {m['p50']['bare'] / 1e3:.2f} → "
                f"{m['p50']['inst'] / 1e3:.2f} | {m['p99']['bare'] / 1e3:.2f} → {m['p99']['inst'] / 1e3:.2f} |"
            )

    lines += [
        "",
        "### Subjects",
        "",
        "| subject | package | version | opentelemetry-sdk | notes |",
        "|---|---|---|---|---|",
    ]
    for s in subjects:
        h = heads.get(s, {})
        v = h.get("versions", {})
        notes = list(h.get("notes", []))
        if s in failed:
            notes.insert(0, "FAILED: " + failed[s])
        st = stats.get(s, {})
        if st.get("forced"):
            notes.append("ran only with skip_dep_check=True (declares no support for this openai)")
        if st.get("span_names"):
            notes.append("spans: " + ", ".join(f"{n}×{c}" for n, c in st["span_names"].items()))
        for k in kinds:
            m = summary[s].get(k)
            if m and m["errors"]:
                notes.append(f"{k}: " + "; ".join(m["errors"][:2]))
        package = envs.IMPLS[envs.SUBJECTS[s]][1]
        lines.append(
            f"| {envs.LABELS[s]} | {package} | {v.get('impl', '—')} | {v.get('opentelemetry-sdk', '—')} | "
            + "; ".join(n[:300] for n in notes)
            + " |"
        )
    return table, lines
