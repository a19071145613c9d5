"""Shared benchmark plumbing: an in-process mock transport for the openai SDK of any major, a
Collector in a process of its own, and the one results file (RESULTS.md) every scenario writes
its section of.

Imported both by the scenarios (run.py's interpreter) and by the workers inside the per-subject
environments, so it needs nothing beyond the standard library at import time.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def httpx_module() -> Any:
    """The HTTP library the installed openai uses (httpx2 for 3.x, httpx before)."""
    import openai

    if openai.__version__.split(".")[0] >= "3":
        import httpx2

        return httpx2
    import httpx

    return httpx


CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, how can I help?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 7,
            "total_tokens": 19,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
).encode()


def stream_body(chunks: int) -> bytes:
    lines = []
    for i in range(chunks):
        delta = {"role": "assistant", "content": ""} if i == 0 else {"content": f"tok{i} "}
        chunk = {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        lines.append(f"data: {json.dumps(chunk)}\n\n")
    final = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    lines.append(f"data: {json.dumps(final)}\n\n")
    usage = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    lines.append(f"data: {json.dumps(usage)}\n\n")
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def mock_client(handler_body: Callable[[Any], tuple[bytes, str]], *, is_async: bool = False) -> Any:
    import openai

    hx = httpx_module()

    def handler(request: Any) -> Any:
        body, ctype = handler_body(request)
        return hx.Response(200, content=body, headers={"content-type": ctype})

    if is_async:
        return openai.AsyncOpenAI(
            api_key="sk-bench",
            base_url="https://api.openai.com/v1",
            http_client=hx.AsyncClient(transport=hx.MockTransport(handler)),
        )
    return openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        http_client=hx.Client(transport=hx.MockTransport(handler)),
    )


def mock_call(workload: str) -> Callable[[], None]:
    """One call of a tool's workload over the mock transport: "chat" (non-streamed), or a
    stream read to its end: "streamN" of N chunks, any other name of 50."""
    msgs = [{"role": "user", "content": "Say hello"}]
    if workload == "chat":
        client = mock_client(lambda request: (CHAT_BODY, "application/json"))

        def chat() -> None:
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

        return chat
    chunks = workload[len("stream") :]
    body = stream_body(int(chunks) if workload.startswith("stream") and chunks.isdigit() else 50)
    client = mock_client(lambda request: (body, "text/event-stream"))

    def stream() -> None:
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
        ):
            pass

    return stream


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """(wall µs per call, this thread's CPU µs per call) over n calls.

    Thread CPU is the caller-thread cost proper: it leaves out the time our background
    worker holds the GIL, which the wall clock of a CPU-bound loop also contains.
    """
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - w0) / n * 1e6, (time.thread_time() - c0) / n * 1e6


def median(values: list[float]) -> float:
    return statistics.median(values)


def clock_calls(owner: Any, attr: str, label: str, clocks: dict[str, float]) -> None:
    """Replace `owner.attr` by a wrapper that adds the thread CPU of each call to `clocks[label]`.

    The profilers clock the package's internals, which move: a step no longer there reads nan.
    """
    original = getattr(owner, attr, None)
    if original is None:
        clocks[label] = float("nan")
        log(f"clock_calls: {getattr(owner, '__name__', owner)}.{attr} is gone; {label!r} not clocked")
        return

    def clocked(*a: Any, **k: Any) -> Any:
        t0 = time.thread_time()
        try:
            return original(*a, **k)
        finally:
            clocks[label] = clocks.get(label, 0.0) + time.thread_time() - t0

    setattr(owner, attr, clocked)


# --------------------------------------------------------------------------- processes
COLLECTOR = """
import sys
from respan_instrument.local import Collector
count = 0
def on_log(log):
    global count
    count += 1
c = Collector(port=int(sys.argv[1]), on_log=on_log)
c.start()
print(c.url, flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(count, flush=True)
    elif line.strip() == "reset":
        count = 0
        c.clear()
        print(0, flush=True)
"""


class CollectorProcess:
    """A Respan-compatible collector in its own process, so its CPU is not counted as ours."""

    def __init__(self, port: int = 0, python: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [python or sys.executable, "-c", COLLECTOR, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def ask(self, command: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def wait_for(self, n: int, timeout: float) -> float:
        """Seconds until the collector holds `n` logs (polling every 20 ms)."""
        t0 = time.perf_counter()
        while self.ask("count") < n:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"collector has {self.ask('count')} of {n} logs after {timeout} s")
            time.sleep(0.02)
        return time.perf_counter() - t0

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(5)


class DropExporter:
    """A span exporter that keeps nothing: the app's own pipeline, minus its network."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# --------------------------------------------------------------------------- the results file
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
RESULTS = os.path.join(BENCH_DIR, "RESULTS.md")
SCENARIOS = ("overhead", "instructions", "soak", "import")
_TITLE = """# Benchmark results

Written by `python benchmarks/run.py` (see the README's Performance section): one section per
scenario, each replaced by its latest run and stating when, where and how it was measured.
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at the start"
    return f"{platform.platform()}, {model}, {os.cpu_count()} cores{load}"


def git_state() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", REPO_DIR, *argv], capture_output=True, text=True, timeout=10)
        return done.stdout.strip()

    try:
        head = git("log", "-1", "--format=%h (%cd)", "--date=short")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "respan_instrument")
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"commit {head}" + (" + uncommitted changes in respan_instrument/" if dirty else "")


def header(command: str, versions: str, started: float) -> list[str]:
    """The lines every section opens with: when, where, what, how long."""
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; took "
        f"{(time.time() - started) / 60:.1f} min",
        f"- machine: {machine()}",
        f"- {versions}",
        f"- respan_instrument: {git_state()}",
        f"- command: `{command}`",
    ]


def write_section(scenario: str, body: str, path: str = RESULTS) -> None:
    """Replace this scenario's section of the results file (the others are kept as they are)."""
    sections: dict[str, str] = {}
    if os.path.exists(path):
        with open(path) as fh:
            text = fh.read()
        for m in re.finditer(r"<!-- scenario: (\S+) -->\n(.*?)<!-- end: \1 -->\n", text, re.S):
            sections[m.group(1)] = m.group(2)
        tail = text[text.rfind("<!-- end: ") :].split("\n", 1)[1] if "<!-- end: " in text else ""
    else:
        tail = ""
    sections[scenario] = body.rstrip("\n") + "\n"
    out = [_TITLE]
    for name in [*SCENARIOS, *sorted(set(sections) - set(SCENARIOS))]:
        if name in sections:
            out.append(f"<!-- scenario: {name} -->\n{sections[name]}<!-- end: {name} -->\n")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + tail)
