"""One implementation, measured against the bare client in the same process; prints JSON.

    <venv python> worker.py IMPL [--rounds 5] [--phase-seconds 0.3] [--collector URL]
                                 [--control URL] [--stub URL] [--workloads chat,stream50,...]

IMPL is ours | genai-openai | openllmetry | openinference | respan-native. Every round runs,
for each workload, a bare phase and an instrumented phase (order alternating between rounds),
instrumenting before and uninstrumenting after the instrumented phase. Peers get a real
OpenTelemetry pipeline: an SDK TracerProvider, a BatchSpanProcessor and an exporter that
encodes every batch as an OTLP/protobuf request (JSON when the encoder is missing) and
discards it. Ours exports request logs for real to the loopback collector given.

The last line of standard output is the JSON result; nothing in here raises past main().
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import struct
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from typing import Any

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH_DIR)

from _common import CHAT_BODY, mock_client, stream_body  # noqa: E402

WORKLOADS = ("chat", "stream50", "stream1000", "embeddings", "chat-http", "image", "transcription")
MSGS = [{"role": "user", "content": "Say hello"}]
EMBED_DIMS = 1536
WARMUP_SECONDS = 1.0  # each workload runs this long before it is calibrated and measured
# fewest calls per phase, whatever the calibration says
MIN_CALLS = {
    "chat": 20,
    "stream50": 10,
    "stream1000": 4,
    "embeddings": 20,
    "chat-http": 20,
    "image": 20,
    "transcription": 20,
}


def _embedding_bodies() -> tuple[bytes, bytes]:
    vec = [((i * 7919) % 2000) / 1000.0 - 1.0 for i in range(EMBED_DIMS)]
    usage = {"prompt_tokens": 2, "total_tokens": 2}

    def body(embedding: Any) -> bytes:
        return json.dumps(
            {
                "object": "list",
                "model": "text-embedding-3-small",
                "usage": usage,
                "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
            }
        ).encode()

    b64 = base64.b64encode(struct.pack(f"<{EMBED_DIMS}f", *vec)).decode()
    return body(vec), body(b64)


EMBED_FLOAT, EMBED_B64 = _embedding_bodies()
# a gpt-image-1 answer with one 64 KB image in base64, and a gpt-4o-mini-transcribe answer
IMAGE_BODY = json.dumps(
    {
        "created": 1700000000,
        "background": "opaque",
        "output_format": "png",
        "quality": "low",
        "size": "1024x1024",
        "data": [{"b64_json": base64.b64encode(bytes(range(256)) * 256).decode()}],
        "usage": {
            "input_tokens": 12,
            "output_tokens": 272,
            "total_tokens": 284,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
        },
    }
).encode()
TRANSCRIPTION_BODY = json.dumps(
    {
        "text": "Hello there, this is a short recording of someone speaking clearly.",
        "usage": {
            "type": "tokens",
            "input_tokens": 60,
            "output_tokens": 14,
            "total_tokens": 74,
            "input_token_details": {"audio_tokens": 60, "text_tokens": 0},
        },
    }
).encode()
AUDIO_FILE = ("talk.mp3", bytes(32 * 1024), "audio/mpeg")
STREAM_BODIES = {"stream50": stream_body(50), "stream1000": stream_body(1000)}


# --------------------------------------------------------------------------- workloads
class Workload:
    """A fresh client per phase (so no client outlives an (un)instrument), closed afterwards."""

    def __init__(self, kind: str, stub_url: str | None) -> None:
        self.kind = kind
        self.stub_url = stub_url

    def build(self) -> tuple[Callable[[], Any], Any]:
        kind = self.kind
        if kind == "chat-http":
            import openai

            client = openai.OpenAI(api_key="sk-bench", base_url=self.stub_url, max_retries=0)
            return (lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)), client
        if kind == "chat":
            client = mock_client(lambda request: (CHAT_BODY, "application/json"))
            return (lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)), client
        if kind == "embeddings":

            def embed_body(request: Any) -> tuple[bytes, str]:
                return (EMBED_B64 if b'"base64"' in request.content else EMBED_FLOAT), "application/json"

            client = mock_client(embed_body)
            return (
                lambda: client.embeddings.create(model="text-embedding-3-small", input="Say hello")
            ), client
        if kind == "image":
            client = mock_client(lambda request: (IMAGE_BODY, "application/json"))
            return (
                lambda: client.images.generate(model="gpt-image-1", prompt="A lighthouse at dawn")
            ), client
        if kind == "transcription":
            client = mock_client(lambda request: (TRANSCRIPTION_BODY, "application/json"))
            return (
                lambda: client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=AUDIO_FILE)
            ), client
        body = STREAM_BODIES[kind]
        client = mock_client(lambda request: (body, "text/event-stream"))

        def consume() -> int:
            n = 0
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True):
                n += 1
            return n

        return consume, client


def run_phase(fn: Callable[[], Any], calls: int) -> dict[str, float]:
    gc.collect()
    p0, w0, c0 = time.process_time(), time.perf_counter(), time.thread_time()
    for _ in range(calls):
        fn()
    c1, w1, p1 = time.thread_time(), time.perf_counter(), time.process_time()
    return {
        "wall": (w1 - w0) / calls * 1e6,
        "thread": (c1 - c0) / calls * 1e6,
        "proc": (p1 - p0) / calls * 1e6,
    }


# --------------------------------------------------------------------------- implementations
class Impl:
    name = "bare"
    supports_uninstrument = True
    notes: list[str]

    def __init__(self) -> None:
        self.notes = []

    def setup(self) -> None: ...
    def instrument(self) -> None: ...
    def uninstrument(self) -> None: ...
    def flush(self) -> bool:
        return True

    def delivered(self) -> int:
        return 0

    def versions(self) -> dict[str, str]:
        return {}


def _dist_version(name: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


class _EncodingExporter:
    """Stand-in for a network exporter: encodes each batch as OTLP would, counts, discards."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        self._ok = SpanExportResult.SUCCESS
        try:
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

            self.kind = "OTLP/protobuf"
            self._encode: Callable[[Any], bytes] = lambda spans: encode_spans(spans).SerializeToString()
        except ImportError:
            self.kind = "JSON"
            self._encode = lambda spans: "\n".join(s.to_json(indent=None) for s in spans).encode()
        self.spans = 0
        self.bytes = 0
        self.names: dict[str, int] = {}
        self.events = 0
        self.event_names: dict[str, int] = {}
        self._lock = threading.Lock()
        outer = self

        class Exporter(SpanExporter):
            def export(self, spans: Any) -> Any:
                data = outer._encode(spans)
                with outer._lock:
                    outer.spans += len(spans)
                    outer.bytes += len(data)
                    for s in spans:
                        outer.names[s.name] = outer.names.get(s.name, 0) + 1
                        outer.events += len(s.events)
                        for e in s.events:
                            outer.event_names[e.name] = outer.event_names.get(e.name, 0) + 1
                return outer._ok

            def shutdown(self) -> None:
                return None

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        self.exporter = Exporter()


def _app_provider() -> tuple[_EncodingExporter, Any]:
    """The application's own tracing, made global: a TracerProvider whose BatchSpanProcessor
    encodes every batch as OTLP would and drops it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    sink = _EncodingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(sink.exporter))
    trace.set_tracer_provider(provider)
    return sink, provider


class OTelPeer(Impl):
    """A peer that writes spans to an OpenTelemetry SDK TracerProvider."""

    dist = ""

    def setup(self) -> None:
        self.sink, self.provider = _app_provider()
        self.notes.append(f"exporter: BatchSpanProcessor(defaults) -> {self.sink.kind} encode, discard")
        self.instrumentor = self.make_instrumentor()
        self.forced = False
        self._refusal: list[str] = []

    def make_instrumentor(self) -> Any:
        raise NotImplementedError

    def instrument(self) -> None:
        handler = _Capture(self._refusal)
        log = logging.getLogger("opentelemetry.instrumentation.instrumentor")
        log.addHandler(handler)
        try:
            self.instrumentor.instrument(tracer_provider=self.provider, skip_dep_check=self.forced)
        finally:
            log.removeHandler(handler)
        if not self.instrumentor.is_instrumented_by_opentelemetry:
            if self.forced:
                raise RuntimeError("instrument() did nothing even with skip_dep_check=True")
            reason = "; ".join(self._refusal[-1:]) or "instrument() did nothing"
            self.notes.append(f"instrument() refused: {reason[:200]} -> retried with skip_dep_check=True")
            self.forced = True
            self.instrument()

    def uninstrument(self) -> None:
        self.instrumentor.uninstrument()

    def flush(self) -> bool:
        return self.provider.force_flush(60_000)

    def delivered(self) -> int:
        return self.sink.spans

    def versions(self) -> dict[str, str]:
        return {
            "impl": _dist_version(self.dist) or "?",
            "opentelemetry-sdk": _dist_version("opentelemetry-sdk") or "?",
        }


class _Capture(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


class GenAIOpenAI(OTelPeer):
    name = "genai-openai"
    dist = "opentelemetry-instrumentation-genai-openai"

    def make_instrumentor(self) -> Any:
        # content on spans, as ours and the other peers record it by default
        os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        self.notes.append("content capture on: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only")
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()


class OpenLLMetry(OTelPeer):
    name = "openllmetry"
    dist = "opentelemetry-instrumentation-openai"

    def make_instrumentor(self) -> Any:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()


class OpenInference(OTelPeer):
    name = "openinference"
    dist = "openinference-instrumentation-openai"

    def make_instrumentor(self) -> Any:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()


class RespanNative(OTelPeer):
    """respan-instrumentation-openai: builds spans itself and pushes them into the global
    provider's processor chain (respan_tracing.utils.span_factory.inject_span), with its
    default auto-flush policy ("root": a debounced force_flush after each injected span)."""

    name = "respan-native"
    dist = "respan-instrumentation-openai"

    def make_instrumentor(self) -> Any:
        from respan_instrumentation_openai import OpenAIInstrumentor

        self.notes.append(
            "spans injected into the global TracerProvider; auto-flush policy: "
            + os.environ.get("RESPAN_AUTO_FLUSH", "root (default)")
        )
        return OpenAIInstrumentor()

    def instrument(self) -> None:
        self.instrumentor.activate()
        if not getattr(self.instrumentor, "_is_instrumented", True):
            raise RuntimeError("activate() did nothing (openai version not supported?)")

    def uninstrument(self) -> None:
        self.instrumentor.deactivate()


class Ours(Impl):
    name = "ours"

    def __init__(self, collector: str | None, control: str | None) -> None:
        super().__init__()
        self.collector = collector
        self.control = control

    def setup(self) -> None:
        if not self.collector:
            raise RuntimeError("ours needs --collector")
        # the spool (for undeliverable logs) in a private directory, not the user's cache
        os.environ["RESPAN_SPOOL_DIR"] = tempfile.mkdtemp(prefix="respan-bench-spool-")
        import respan_instrument

        self.mod = respan_instrument
        self.notes.append("exports request logs over loopback HTTP to the Collector (separate process)")

    def instrument(self) -> None:
        self.mod.instrument(api_key="bench", base_url=self.collector)

    def uninstrument(self) -> None:
        self.mod.uninstrument()

    def flush(self) -> bool:
        return bool(self.mod.flush(60))

    def delivered(self) -> int:
        if not self.control:
            return 0
        with urllib.request.urlopen(self.control, timeout=10) as r:  # noqa: S310 - loopback
            return int(json.loads(r.read())["logs"])

    def versions(self) -> dict[str, str]:
        return {
            "impl": getattr(self.mod, "__version__", "?"),
            "opentelemetry-sdk": _dist_version("opentelemetry-sdk") or "?",
        }


class OursAppTP(Ours):
    """Ours in an application that has its own TracerProvider, exporting as the peers do: our
    span goes to the app's BatchSpanProcessor (encoded to OTLP, dropped) and the request log to
    the Collector."""

    name = "ours+app-tp"

    def setup(self) -> None:
        super().setup()
        self.sink, self.provider = _app_provider()
        self.notes.append(
            f"app's TracerProvider: BatchSpanProcessor(defaults) -> {self.sink.kind} encode, discard"
        )

    def flush(self) -> bool:
        return bool(self.mod.flush(60)) and self.provider.force_flush(60_000)


def make_impl(name: str, args: argparse.Namespace) -> Impl:
    if name == "ours":
        return Ours(args.collector, args.control)
    if name == "ours+app-tp":
        return OursAppTP(args.collector, args.control)
    return {
        "genai-openai": GenAIOpenAI,
        "openllmetry": OpenLLMetry,
        "openinference": OpenInference,
        "respan-native": RespanNative,
    }[name]()


# --------------------------------------------------------------------------- the run
def calibrate(fn: Callable[[], Any], seconds: float, minimum: int) -> int:
    # A process's first calls run slower for a while: a bare chat call was seen at 1.8 ms
    # falling to 1.05 ms over its first ~1,200 calls (2-core VM). Rounds start past that.
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < WARMUP_SECONDS:
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min(0.1, seconds / 3) or n < 2:
        fn()
        n += 1
    per_call = (time.perf_counter() - t0) / n
    return max(minimum, int(seconds / per_call))


def first_call(impl: Impl, notes: list[str]) -> None:
    """What a user does: instrument(), then at once create a client and call. Must not fail."""
    fn, client = Workload("chat", None).build()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - a finding, reported
        notes.append(
            f"FIRST CALL RIGHT AFTER instrument() FAILED: {type(exc).__name__}: {str(exc)[:160]} "
            "(the benchmark waited 2 s and went on)"
        )
        time.sleep(2)
        fn()
    finally:
        client.close()


def stream_probes(impl: Impl, reps: int = 5) -> dict[str, Any]:
    """Records delivered per stream that the user leaves early (not timed; instrumented)."""
    body = STREAM_BODIES["stream50"]
    client = mock_client(lambda request: (body, "text/event-stream"))

    def break_close() -> None:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        for i, _ in enumerate(stream):
            if i == 4:
                break
        stream.close()

    def break_drop() -> None:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        for i, _ in enumerate(stream):
            if i == 4:
                break
        del stream  # no close(); CPython frees it here (no cycle), gc does not run

    def helper_early() -> None:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MSGS) as stream:
            for i, _ in enumerate(stream):
                if i == 4:
                    break

    def helper_full() -> None:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MSGS) as stream:
            for _ in stream:
                pass

    results: dict[str, Any] = {}
    for name, fn in (
        ("break + close()", break_close),
        ("break, dropped unclosed", break_drop),
        (".stream() helper, left early", helper_early),
        (".stream() helper, read to end", helper_full),
    ):
        gc.disable()
        try:
            before = impl.delivered()
            for _ in range(reps):
                fn()
            impl.flush()
            results[name] = (impl.delivered() - before) / reps
        except Exception as exc:  # noqa: BLE001
            results[name] = f"{type(exc).__name__}: {str(exc)[:120]}"
        finally:
            gc.enable()
    gc.collect()
    client.close()
    return results


def run(args: argparse.Namespace, out: dict[str, Any]) -> None:
    impl = make_impl(args.impl, args)
    out["notes"] = impl.notes
    impl.notes.extend(args.note or [])
    import openai

    out["versions"] = {"openai": openai.__version__, "python": sys.version.split()[0]}
    stage = "setup"
    try:
        impl.setup()
        out["versions"].update(impl.versions())
        if not args.sequential:
            # one cycle outside the measurements: fails early, loads lazily, and checks that
            # uninstrument() really removes the instrumentation
            stage = "instrument"
            impl.instrument()
            first_call(impl, impl.notes)
            impl.flush()
            stage = "uninstrument"
            impl.uninstrument()
            impl.flush()
            before = impl.delivered()
            fn, client = Workload("chat", None).build()
            for _ in range(3):
                fn()
            client.close()
            impl.flush()
            leaked = impl.delivered() - before
            if leaked:
                note = (
                    f"uninstrument() left the instrumentation in place ({leaked} records from 3 calls "
                    "after it): bare rounds ran first, then one instrument() for all instrumented rounds"
                )
                argv = [
                    sys.executable,
                    os.path.abspath(__file__),
                    *sys.argv[1:],
                    "--sequential",
                    "--note",
                    note,
                ]
                sys.stdout.flush()
                os.execv(sys.executable, argv)
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        out["ok"] = False
        out["error"] = f"{stage}: {type(exc).__name__}: {str(exc)[:300]}"
        out["traceback"] = traceback.format_exc()[-2000:]
        return
    out["interleaved"] = not args.sequential

    kinds = [k for k in args.workloads.split(",") if k]
    if not args.stub:
        kinds = [k for k in kinds if k != "chat-http"]
    recs: dict[str, dict[str, Any]] = {}
    out["workloads"] = recs
    for kind in kinds:
        fn, client = Workload(kind, args.stub).build()
        try:
            calls = calibrate(fn, args.phase_seconds, MIN_CALLS[kind])
        finally:
            client.close()
        recs[kind] = {
            "calls": calls,
            "rounds": [{} for _ in range(args.rounds)],
            "delivered_inst": 0,
            "delivered_bare": 0,
            "inst_calls": 0,
            "errors": [],
        }

    def phase(kind: str, r: int, mode: str, toggle: bool) -> None:
        rec = recs[kind]
        calls = rec["calls"]
        fn, client = Workload(kind, args.stub).build()
        res = None
        try:
            before = impl.delivered()
            if mode == "inst" and toggle:
                impl.instrument()
            warm = 3 if mode == "inst" else 2
            try:
                for _ in range(warm):
                    fn()
                if mode == "inst":  # steady state: start-up work (threads, files, TLS) is done
                    impl.flush()
                res = run_phase(fn, calls)
                if mode == "inst":
                    p0 = time.process_time()
                    flushed = impl.flush()
                    # CPU of delivering what this phase produced, per call
                    res["proc_flush"] = res["proc"] + (time.process_time() - p0) / calls * 1e6
                    if not flushed:
                        rec["errors"].append(f"round {r}: flush timed out")
            finally:
                if mode == "inst" and toggle:
                    impl.uninstrument()
                impl.flush()
            after = impl.delivered()
            if mode == "inst":
                rec["delivered_inst"] += after - before
                rec["inst_calls"] += calls + warm
            else:
                rec["delivered_bare"] += after - before
        except Exception as exc:  # noqa: BLE001
            rec["errors"].append(f"round {r} {mode}: {type(exc).__name__}: {str(exc)[:200]}")
            res = None
        finally:
            client.close()
        rec["rounds"][r][mode] = res

    if args.sequential:
        for r in range(args.rounds):
            for kind in kinds:
                phase(kind, r, "bare", False)
        impl.instrument()
        first_call(impl, impl.notes)
        impl.flush()
        for r in range(args.rounds):
            for kind in kinds:
                phase(kind, r, "inst", False)
    else:
        for kind in kinds:
            for r in range(args.rounds):
                for mode in ("bare", "inst") if r % 2 == 0 else ("inst", "bare"):
                    phase(kind, r, mode, True)

    try:
        if not args.sequential:
            impl.instrument()
        out["probes"] = stream_probes(impl)
    except Exception as exc:  # noqa: BLE001
        out["probes_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"

    if isinstance(impl, OTelPeer):
        out["span_names"] = dict(sorted(impl.sink.names.items(), key=lambda kv: -kv[1])[:8])
        out["span_events"] = impl.sink.events
        out["event_names"] = dict(sorted(impl.sink.event_names.items(), key=lambda kv: -kv[1])[:5])
        out["export_bytes"] = impl.sink.bytes
        out["exported_spans"] = impl.sink.spans
        if impl.forced:
            out["forced"] = True
    out["ok"] = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("impl")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--phase-seconds", type=float, default=0.3)
    parser.add_argument("--collector")
    parser.add_argument("--control")
    parser.add_argument("--stub")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="all bare rounds first, then instrument once (for peers whose uninstrument() leaks)",
    )
    parser.add_argument("--note", action="append", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    out: dict[str, Any] = {"impl": args.impl, "ok": False}
    try:
        run(args, out)
    except Exception as exc:  # noqa: BLE001 - the orchestrator records it
        out["ok"] = False
        out["error"] = out.get("error") or f"{type(exc).__name__}: {str(exc)[:300]}"
        out["traceback"] = traceback.format_exc()[-2000:]
    sys.stdout.flush()
    print("\n" + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
