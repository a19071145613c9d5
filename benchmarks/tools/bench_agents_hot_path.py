"""What the Agents SDK support costs a model call on the caller's thread, in instructions.

    PYTHONPATH=. python benchmarks/tools/bench_agents_hot_path.py [--calls 50,250]

Runs the same non-streamed chat call (an in-process mock transport, no network) under callgrind in
four setups, each twice with a different number of calls; the difference between the two runs'
caller-thread totals, divided by the difference in calls, is the instructions per call (start-up,
imports and warm-up cancel out; the garbage collector is off for the calls, and the process ends
with `os._exit` after them, so the exit flush, which runs on the caller's thread and finds more or
less left to do, is not counted):

    bare         openai, not instrumented
    ours         instrumented, the Agents SDK never imported
    ours+agents  instrumented, the Agents SDK imported (our processor registered), no run going on
    ours+in-run  instrumented, each call inside an Agents trace and span (the model call's log
                 reads where it hangs in the run)

Needs valgrind and the Agents SDK in the running interpreter's environment.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
MODES = ("bare", "ours", "ours+agents", "ours+in-run")

WORKER = r"""
import sys
sys.path.insert(0, {here!r})
mode, calls = sys.argv[1], int(sys.argv[2])
from common import CHAT_BODY, mock_client
if mode != "bare":
    import respan_instrument
    respan_instrument.instrument(api_key="rk-bench", base_url="http://127.0.0.1:9/api")
if mode in ("ours+agents", "ours+in-run"):
    import agents
    agents.set_trace_processors([])  # only ours is added (no exporter to OpenAI in a benchmark)
    respan_instrument.instrument(api_key="rk-bench", base_url="http://127.0.0.1:9/api", agents="exclusive")
client = mock_client(lambda request: (CHAT_BODY, "application/json"))
messages = [{{"role": "user", "content": "Hello"}}]

def call():
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)

def run(n):
    for _ in range(n):
        call()

import gc
gc.collect()
gc.freeze()
gc.disable()  # a collection lands in one run and not the other: leave them out of both

if mode == "ours+in-run":
    with agents.trace("bench"), agents.custom_span("step"):
        run(20)
        run(calls)
else:
    run(20)
    run(calls)
import os
os._exit(0)  # the exit flush runs on this thread: what it finds left to do is no call's cost
"""


def instructions(mode: str, calls: int) -> int:
    """Caller-thread instructions of one run (thread 1 of the process)."""
    with tempfile.TemporaryDirectory() as out:
        script = os.path.join(out, "worker.py")
        with open(script, "w") as fh:
            fh.write(WORKER.format(here=HERE))
        env = {**os.environ, "RESPAN_SPOOL_DIR": os.path.join(out, "spool"), "RESPAN_SCHEDULE_DELAY": "20"}
        command = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}/cg.out",
            sys.executable,
            script,
            mode,
            str(calls),
        ]
        for _attempt in range(3):  # (python under valgrind now and then dies at exit: run again)
            done = subprocess.run(command, env=env, capture_output=True)
            if done.returncode == 0:
                break
            sys.stderr.write(f"{mode} {calls}: exit {done.returncode}, again\n")
        done.check_returncode()
        (main,) = [path for path in glob.glob(f"{out}/cg.out*") if path.endswith("-01")]
        with open(main) as fh:
            for line in fh:
                found = re.match(r"(?:summary|totals): (\d+)", line)
                if found:
                    return int(found.group(1))
    raise RuntimeError("no totals in callgrind's output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="50,250")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    low, high = (int(n) for n in args.calls.split(","))
    results = {}
    for mode in args.modes.split(","):
        per_call = (instructions(mode, high) - instructions(mode, low)) / (high - low)
        results[mode] = per_call
        print(f"{mode:12s} {per_call:10.0f} instructions per chat call (caller's thread)", flush=True)
    if "bare" in results:
        for mode, value in results.items():
            print(f"{mode:12s} {value / results['bare']:.4f}x bare")


if __name__ == "__main__":
    main()
