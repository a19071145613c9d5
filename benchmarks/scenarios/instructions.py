"""Instructions per call under callgrind: bare, ours and the peers (load-independent).

On a shared VM the time a call takes swings from one phase to the next by far more than the
budgets we are measured against, so a timing median needs many rounds to say anything about a
few per cent. The number of instructions a thread executes does not swing: callgrind counts
them, and the same code, inputs and environment give the same count whatever else the machine is
doing. Each subject runs once under `valgrind --tool=callgrind --separate-threads=yes` in its
package's environment, every workload in turn; callgrind dumps every thread's counters before
and after each workload's measured calls (`callgrind_control --dump`), so start-up, imports and
warm-up are left out, and each measured part ends with a flush, so it holds all of its calls'
telemetry work: ours builds, spools and posts every log to a loopback Collector in another
process; the peers encode their spans to OTLP/protobuf and drop them. Per call: the caller's
thread and the whole process (every thread). The bare client runs in ours' environment with
nothing instrumented. Left out: the kernel's work in system calls, cache misses, GIL hand-overs:
the overhead scenario measures time. Under valgrind a call runs ~50x slower, so our background
timers are stretched to match (RESPAN_SCHEDULE_DELAY) and batches keep their full-speed size.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "peers")]

WORKLOADS = ("chat", "stream50", "stream1000", "embeddings", "image", "transcription")
WARMUP = {"chat": 20, "stream50": 8, "stream1000": 2, "embeddings": 20, "image": 20, "transcription": 20}
# measured calls for --calls 200 (streams are scaled down: a 50-chunk stream costs ~8 chats)
SCALE = {
    "chat": 1.0,
    "embeddings": 1.0,
    "stream50": 0.25,
    "stream1000": 0.025,
    "image": 1.0,
    "transcription": 1.0,
}
SCHEDULE_DELAY_UNDER_VALGRIND = "20"  # seconds; 0.5 s at full speed
LABELS = {
    "chat": "chat, non-streamed",
    "stream50": "chat stream, 50 chunks",
    "stream1000": "chat stream, 1000 chunks",
    "embeddings": "embeddings (1536-d)",
    "image": "image (gpt-image-1, 64 KB base64)",
    "transcription": "transcription (32 KB mp3)",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def marker(label: str) -> None:
    """Have callgrind dump every thread's counters now (and zero them).

    `callgrind_control` reaches this process through valgrind's gdbserver while we wait for it,
    so the dump lands exactly here. (`--dump-before` dumps only the thread that hits it, which
    would leave our background threads' work unattributed.)
    """
    subprocess.run(
        ["callgrind_control", f"--dump={label}", str(os.getpid())], capture_output=True, check=True
    )


# --------------------------------------------------------------------------- the child
def child(args: argparse.Namespace) -> None:
    """Runs under callgrind: warm up, mark, measured calls, flush, mark; for each workload."""
    import gc
    import threading
    from types import SimpleNamespace

    import worker

    impl: Any = (
        worker.Impl()
        if args.impl == "bare"
        else worker.make_impl(args.impl, SimpleNamespace(collector=args.collector, control=None))
    )
    impl.setup()
    if args.impl != "bare":
        impl.instrument()
    for kind in args.workloads.split(","):
        fn, client = worker.Workload(kind, None).build()
        for _ in range(WARMUP[kind]):
            fn()
        impl.flush()
        for thread in threading.enumerate():  # one-time work (our price table) stays out
            if thread.name == "respan-prices":
                thread.join()
        gc.collect()
        marker(f"{kind} warmed up")
        for _ in range(calls_for(kind, args.calls)):
            fn()
        impl.flush()
        marker(f"{kind} measured")
        client.close()
    print("ok", flush=True)


def calls_for(kind: str, calls: int) -> int:
    return max(4, int(calls * SCALE[kind]))


# --------------------------------------------------------------------------- the parent
def run_one(
    python: str, impl: str, workloads: list[str], calls: int, collector: str | None, out_dir: str
) -> dict[str, Any]:
    """One valgrind run; per workload, instructions per call of the caller's thread and in all."""
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONHASHSEED"] = "0"
    env["RESPAN_SCHEDULE_DELAY"] = SCHEDULE_DELAY_UNDER_VALGRIND
    env["RESPAN_SPOOL_DIR"] = os.path.join(out_dir, "spool")
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={os.path.join(out_dir, 'cg.out')}",
        python,
        os.path.abspath(__file__),
        "--child",
        "--impl",
        impl,
        "--workloads",
        ",".join(workloads),
        "--calls",
        str(calls),
    ]
    if collector:
        cmd += ["--collector", collector]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode or "ok" not in r.stdout.split():
        tail = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("==")]
        return {"ok": False, "error": " | ".join(tail[-3:])[-400:] or f"exit {r.returncode}"}
    parts: dict[int, dict[int, int]] = {}  # part -> thread -> instructions
    for path in glob.glob(os.path.join(out_dir, "cg.out.*-*")):
        part, thread = os.path.basename(path)[len("cg.out.") :].split("-")
        parts.setdefault(int(part), {})[int(thread)] = _totals(path)
    out: dict[str, Any] = {"ok": True, "seconds": time.time() - t0, "workloads": {}}
    for i, kind in enumerate(workloads):
        measured = parts.get(2 * i + 2, {})  # odd parts: start-up and warm-up; even: measured
        n = calls_for(kind, calls)
        out["workloads"][kind] = {
            "calls": n,
            "caller": measured.get(1, 0) / n,
            "process": sum(measured.values()) / n,
            "threads": len(measured),
        }
    return out


def _totals(path: str) -> int:
    with open(path) as fh:
        for line in fh:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    return 0


def render(
    results: dict[int, dict[str, dict[str, Any]]],
    versions: dict[int, str],
    impls: list[str],
    workloads: list[str],
) -> str:
    lines: list[str] = []
    for major in sorted(results, reverse=True):
        row = results[major]
        bare = row.get("bare", {})
        level = "###"
        if len(results) > 1:
            lines += ["", f"### openai {versions[major]}"]
            level = "####"
        for metric, title in (("caller", "Caller thread"), ("process", "Process, all threads")):
            lines += [
                "",
                f"{level} {title}: instructions per call (ratio to bare, extra)",
                "",
                "| workload | bare | " + " | ".join(impls) + " |",
                "|---|---:|" + "---:|" * len(impls),
            ]
            for kind in workloads:
                b = bare.get("workloads", {}).get(kind, {}).get(metric) if bare.get("ok") else None
                cells = [f"{b / 1e3:,.0f} k" if b else "—"]
                for impl in impls:
                    r = row.get(impl, {})
                    v = r.get("workloads", {}).get(kind, {}).get(metric) if r.get("ok") else None
                    cells.append(f"{v / b:.3f}× ({(v - b) / 1e3:+,.0f} k)" if v and b else "—")
                lines.append(f"| {LABELS[kind]} | " + " | ".join(cells) + " |")
        failed = [f"{impl}: {r.get('error')}" for impl, r in row.items() if not r.get("ok")]
        if failed:
            lines += ["", "Failed: " + "; ".join(failed)]
    return "\n".join(lines).rstrip() + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--majors", default="3", help="openai majors (the newest release of each)")
    parser.add_argument(
        "--subjects", default="ours,ours+app-tp,genai-openai,openinference,openllmetry,respan-native"
    )
    parser.add_argument("--workloads", default="chat,stream50", help=",".join(WORKLOADS))
    parser.add_argument("--calls", type=int, help="measured chat calls per subject (200; --quick 50)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="valgrind runs at once")
    parser.add_argument("--keep", action="store_true", help="keep callgrind's files (for callgrind_annotate)")


def run(args: argparse.Namespace) -> str:
    import envs
    from common import header
    from overhead import Servers

    started = time.time()
    if shutil.which("valgrind") is None:
        return "## Instructions per call (callgrind)\n\nnot run: valgrind is not installed\n"
    calls = args.calls or (50 if args.quick else 200)
    majors = [int(m) for m in args.majors.split(",") if m]
    wanted = (args.subjects or ("ours" if args.quick else ",".join(envs.SUBJECTS))).split(",")
    impls = [i for i in envs.SUBJECTS if i in wanted]
    workloads = [w for w in args.workloads.split(",") if w in WORKLOADS]
    versions = envs.openai_versions(majors, log=log)
    pythons: dict[tuple[str, int], str] = {}
    for major in majors:
        for env_name in dict.fromkeys(["ours", *(envs.SUBJECTS[i] for i in impls)]):
            env = envs.ensure_env(env_name, major, versions[major], log=log)
            if env["ok"]:
                pythons[(env_name, major)] = env["python"]
    server_python = pythons.get(("ours", majors[0]))
    servers = Servers(server_python) if any(i.startswith("ours") for i in impls) and server_python else None
    work_dir = tempfile.mkdtemp(prefix="respan-callgrind-")
    jobs = [(major, impl) for major in majors for impl in ("bare", *impls)]
    results: dict[int, dict[str, dict[str, Any]]] = {m: {} for m in majors}

    def go(job: tuple[int, str]) -> None:
        major, impl = job
        python = pythons.get(("ours" if impl == "bare" else envs.SUBJECTS[impl], major))
        if python is None:
            results[major][impl] = {"ok": False, "error": "environment did not build"}
            return
        log(f"openai {versions[major]} {impl}: under callgrind ...")
        r = run_one(
            python,
            impl,
            workloads,
            calls,
            servers.collector if servers else None,
            os.path.join(work_dir, f"{impl}-openai{major}"),
        )
        log(
            f"openai {versions[major]} {impl}: "
            + (f"done in {r['seconds']:.0f} s" if r["ok"] else r["error"])
        )
        results[major][impl] = r

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(go, jobs))
    finally:
        if servers is not None:
            servers.stop()
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            log(f"callgrind files kept in {work_dir}")
    command = "python benchmarks/run.py instructions" + (" --quick" if args.quick else "")
    lines = [
        "## Instructions per call (callgrind)",
        "",
        *header(
            command,
            "openai " + " / ".join(versions[m] for m in sorted(majors, reverse=True)) + f", Python "
            f"{platform.python_version()} (the environments' base interpreter); {calls} measured chat calls "
            "(streams scaled down)",
            started,
        ),
        "",
        "Method: " + " ".join(__doc__.split("\n\n", 1)[1].split()),  # type: ignore[union-attr]
        "",
    ]
    return "\n".join(lines) + render(results, versions, impls, workloads)


if __name__ == "__main__":
    # the child, under valgrind (run_one starts it)
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--impl")
    parser.add_argument("--collector")
    parser.add_argument("--workloads")
    parser.add_argument("--calls", type=int)
    child(parser.parse_args())
