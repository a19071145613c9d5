"""Where our caller-thread time goes: cProfile of instrumented openai calls (mock transport).

    python benchmarks/tools/profile_hot_path.py [--calls 3000] [--workload chat|stream50|embeddings]
                                          [--major 2] [--top 30] [--pyinstrument]

Runs in the `ours` environment of the overhead scenario (re-executes itself there when the current
interpreter cannot import openai and respan_instrument), exporting for real to a loopback
Collector in another process. Prints the functions under respan_instrument, opentelemetry,
wrapt and genai_prices by cumulative and by own time, in µs per call. cProfile inflates the
cost of many small calls; the ranking is the point, `run.py overhead` has the real numbers.
--pyinstrument (installed into the environment on first use) gives a sampled call tree instead.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
OURS = re.compile(r"respan_instrument|opentelemetry|wrapt|genai_prices")


def _reexec_in_venv(major: int) -> None:
    sys.path.insert(0, os.path.join(HERE, "peers"))
    import envs

    version = envs.openai_versions([major], log=lambda m: print(m, file=sys.stderr))[major]
    env = envs.ensure_env("ours", major, version, log=lambda m: print(m, file=sys.stderr))
    if not env["ok"]:
        sys.exit(f"cannot build the ours environment: {env['error']}")
    os.execv(env["python"], [env["python"], os.path.abspath(__file__), *sys.argv[1:], "--in-venv"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--workload", default="chat", choices=["chat", "stream50", "embeddings"])
    parser.add_argument("--major", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        import openai  # noqa: F401

        import respan_instrument
    except ImportError:
        if args.in_venv:
            raise
        _reexec_in_venv(args.major)
        return

    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(HERE, "peers"))
    from worker import Workload  # the same workloads the overhead scenario measures

    os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-bench-spool-")
    servers = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "peers", "servers.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = json.loads(servers.stdout.readline())
        respan_instrument.instrument(api_key="bench", base_url=urls["collector"])
        time.sleep(0.5)  # let instrument()'s background warm-up finish before the first client
        fn, client = Workload(args.workload, None).build()
        for _ in range(max(50, args.calls // 10)):  # warm: prices resolved, lazy imports done
            fn()
        respan_instrument.flush(30)
        n = args.calls if args.workload != "stream50" else max(100, args.calls // 8)
        if args.pyinstrument:
            profile_pyinstrument(fn, n)
        else:
            profile_cprofile(fn, n, args.top)
        respan_instrument.flush(30)
        client.close()
        respan_instrument.uninstrument()
    finally:
        servers.stdin.close()
        servers.wait(10)


def profile_cprofile(fn: object, n: int, top: int) -> None:
    prof = cProfile.Profile()
    t0 = time.thread_time()
    prof.enable()
    for _ in range(n):
        fn()  # type: ignore[operator]
    prof.disable()
    total = (time.thread_time() - t0) / n * 1e6
    stats = pstats.Stats(prof)
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if OURS.search(filename):
            short = re.sub(r".*?/(respan_instrument|opentelemetry|wrapt|genai_prices)/", r"\1/", filename)
            rows.append((ct / n * 1e6, tt / n * 1e6, nc / n, f"{short}:{line}({func})"))
    own_total = sum(r[1] for r in rows)
    print(
        f"{n} calls, caller-thread CPU under cProfile {total:.0f} µs per call; own time in "
        f"respan_instrument/opentelemetry/wrapt/genai_prices: {own_total:.1f} µs per call\n"
    )
    print(f"top {top} by cumulative time (µs per openai call; calls per openai call):")
    print(f"{'cum µs':>8} {'own µs':>8} {'calls':>6}  function")
    for ct, tt, nc, name in sorted(rows, reverse=True)[:top]:
        # a wrapper around the SDK's own request or parsing includes all of the SDK's time
        mark = "   (wraps the SDK call: includes its time)" if ct > 2 * own_total else ""
        print(f"{ct:8.1f} {tt:8.1f} {nc:6.1f}  {name}{mark}")
    # what our code calls outside itself (pydantic, json, the SDK's helpers...), leaving out the
    # wrapped SDK call proper: time attributed per caller by cProfile
    wrappers = {
        key
        for key, (cc, nc, tt, ct, _c) in stats.stats.items()  # type: ignore[attr-defined]
        if OURS.search(key[0]) and ct / n * 1e6 > 2 * own_total
    }
    outside: dict[str, list[float]] = {}
    for key, (*_, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if OURS.search(key[0]):
            continue
        for caller, (_c_cc, c_nc, _c_tt, c_ct) in callers.items():
            if OURS.search(caller[0]) and caller not in wrappers:
                name = f"{re.sub(r'.*/(site-packages|lib/python3[.0-9]*)/', '', key[0])}:{key[1]}({key[2]})"
                row = outside.setdefault(name, [0.0, 0.0])
                row[0] += c_ct / n * 1e6
                row[1] += c_nc / n
    if outside:
        print(
            f"\ncalled from our code outside respan_instrument/opentelemetry/wrapt (not the wrapped SDK call): "
            f"{sum(v[0] for v in outside.values()):.1f} µs per call; top {min(top, 15)}:"
        )
        print(f"{'cum µs':>8} {'calls':>6}  function")
        for name, (ct, nc) in sorted(outside.items(), key=lambda kv: -kv[1][0])[: min(top, 15)]:
            print(f"{ct:8.1f} {nc:6.1f}  {name}")
    print(f"\ntop {top} by own time:")
    print(f"{'own µs':>8} {'cum µs':>8} {'calls':>6}  function")
    for ct, tt, nc, name in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"{tt:8.1f} {ct:8.1f} {nc:6.1f}  {name}")


def profile_pyinstrument(fn: object, n: int) -> None:
    try:
        import pyinstrument
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pyinstrument"], check=True)
        import pyinstrument
    profiler = pyinstrument.Profiler(interval=0.0001)
    profiler.start()
    for _ in range(n):
        fn()  # type: ignore[operator]
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
