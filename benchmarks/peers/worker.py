"""One subject in one process, driven phase by phase by the overhead scenario; JSON lines.

    <venv python> worker.py SUBJECT --role bare|inst [--collector URL] [--control URL]
                                    [--stub URL] [--workloads chat,stream50] [--warmup 1.0]

SUBJECT is ours | ours+app-tp | genai-openai | openllmetry | openinference | respan-native.
With --role inst the process instruments once at start and stays instrumented, as a deployed
application does; with --role bare it never imports the instrumentation, and is the control the
same environment's instrumented process is compared with. After start-up and a warm-up of every
workload it prints one JSON line ({"ready": ...}), then answers each line read from standard
input, {"phase": WORKLOAD, "calls": N}, with one JSON line of that phase's measures; it exits
when standard input closes.

Peers get a real OpenTelemetry pipeline: an SDK TracerProvider, a BatchSpanProcessor and an
exporter that encodes every batch as an OTLP/protobuf request (JSON when the encoder is missing)
and discards it. Ours exports request logs for real to the loopback Collector given, in
another process; a phase of ours ends when that Collector holds every log of the phase.
Nothing in here raises past main(): an error is a JSON line.
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

from common import CHAT_BODY, mock_client, stream_body  # noqa: E402

WORKLOADS = ("chat", "stream50", "stream1000", "embeddings", "chat-http", "image", "transcription")
MSGS = [{"role": "user", "content": "Say hello"}]
EMBED_DIMS = 1536


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

    def wait_delivered(self, expected: int, timeout: float = 120) -> bool:
        """Until the destination holds `expected` records of this process (spans are held once
        flushed; ours waits for the Collector in the other process)."""
        return self.delivered() >= expected

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

    def clear(self) -> None:
        """Empty the Collector (it is shared by the subjects of ours, one phase at a time)."""
        if self.control:
            req = urllib.request.Request(self.control, data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - loopback
                pass

    def wait_delivered(self, expected: int, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while self.delivered() < expected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

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


def make_impl(name: str, args: Any) -> Impl:
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


# --------------------------------------------------------------------------- serving phases
def first_call(notes: list[str]) -> None:
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


def warm(fn: Callable[[], Any], seconds: float) -> None:
    # A process's first calls run slower for a while: a bare chat call was seen at 1.8 ms
    # falling to 1.05 ms over its first ~1,200 calls (2-core VM). Phases start past that.
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Phases:
    """Runs measured phases of one workload after another in this process."""

    def __init__(self, impl: Impl, instrumented: bool, stub: str | None) -> None:
        self.impl = impl
        self.instrumented = instrumented
        self.stub = stub

    def run(self, kind: str, calls: int) -> dict[str, Any]:
        impl = self.impl
        fn, client = Workload(kind, self.stub).build()
        try:
            if self.instrumented and isinstance(impl, Ours):
                impl.clear()
            # records at the destination before this phase; a phase must add one per call
            base = impl.delivered() if self.instrumented else 0
            # steady state before the clock starts: the client's first calls, and for the
            # instrumented process the start-up work of its telemetry (threads, files, HTTP
            # client) done and delivered
            warm_calls = 3
            for _ in range(warm_calls):
                fn()
            if self.instrumented:
                impl.flush()
                impl.wait_delivered(base + warm_calls)
            gc.collect()
            stamps = [0.0] * (calls + 1)
            clock = time.perf_counter
            p0, c0 = time.process_time(), time.thread_time()
            stamps[0] = clock()
            for i in range(1, calls + 1):
                fn()
                stamps[i] = clock()
            c1 = time.thread_time()
            out: dict[str, Any] = {}
            if self.instrumented:
                expected = base + warm_calls + calls
                flushed = impl.flush()
                # the main thread's CPU while it polls the Collector is the benchmark's, not ours;
                # the background threads' CPU meanwhile (sending) is the subject's
                w0 = time.thread_time()
                held = impl.wait_delivered(expected, timeout=120 if flushed else 5)
                waiting = time.thread_time() - w0
                p1 = time.process_time() - waiting
                got = impl.delivered() - base
                out["records_per_call"] = got / (warm_calls + calls)
                if not flushed:
                    out["error"] = "flush() timed out"
                elif not held or got != warm_calls + calls:
                    out["error"] = f"{got} records at the destination for {warm_calls + calls} calls"
            else:
                p1 = time.process_time()
            lat = sorted(stamps[i + 1] - stamps[i] for i in range(calls))
            out.update(
                calls=calls,
                wall=(stamps[-1] - stamps[0]) / calls * 1e6,
                thread=(c1 - c0) / calls * 1e6,
                proc=(p1 - p0) / calls * 1e6,
                p50=percentile(lat, 0.50) * 1e6,
                p90=percentile(lat, 0.90) * 1e6,
                p99=percentile(lat, 0.99) * 1e6,
            )
            return out
        finally:
            client.close()


def stats(impl: Impl) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(impl, (OTelPeer, OursAppTP)):
        out["span_names"] = dict(sorted(impl.sink.names.items(), key=lambda kv: -kv[1])[:8])
        out["span_events"] = impl.sink.events
        out["exported_spans"] = impl.sink.spans
        if getattr(impl, "forced", False):
            out["forced"] = True
    return out


def serve(args: argparse.Namespace) -> None:
    import openai

    instrumented = args.role == "inst"
    impl = make_impl(args.subject, args) if instrumented else Impl()
    head: dict[str, Any] = {
        "subject": args.subject,
        "role": args.role,
        "versions": {"openai": openai.__version__, "python": sys.version.split()[0]},
        "notes": impl.notes,
    }
    stage = "setup"
    try:
        if instrumented:
            impl.setup()
            head["versions"].update(impl.versions())
            stage = "instrument"
            impl.instrument()
            first_call(impl.notes)
            impl.flush()
        stage = "warm-up"
        phases = Phases(impl, instrumented, args.stub)
        for kind in [k for k in args.workloads.split(",") if k]:
            fn, client = Workload(kind, args.stub).build()
            try:
                warm(fn, args.warmup)
            finally:
                client.close()
            if instrumented:
                impl.flush()
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        head.update(ready=False, error=f"{stage}: {type(exc).__name__}: {str(exc)[:300]}")
        head["traceback"] = traceback.format_exc()[-2000:]
        reply(head)
        return
    reply({**head, "ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            ask = json.loads(line)
            if "phase" in ask:
                reply(phases.run(ask["phase"], int(ask["calls"])))
            else:
                reply(stats(impl))
        except Exception as exc:  # noqa: BLE001 - the orchestrator records it
            reply({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})


_OUT = sys.stdout  # the JSON lines; main() points sys.stdout at stderr for everything else


def reply(payload: dict[str, Any]) -> None:
    _OUT.write(json.dumps(payload) + "\n")
    _OUT.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("subject")
    parser.add_argument("--role", choices=("bare", "inst"), default="inst")
    parser.add_argument("--collector")
    parser.add_argument("--control")
    parser.add_argument("--stub")
    parser.add_argument("--workloads", default="chat,stream50")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of calls per workload at start")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    # whatever the instrumentations print must not corrupt the JSON lines on standard output
    sys.stdout = sys.stderr
    try:
        serve(args)
    except Exception as exc:  # noqa: BLE001
        reply({"ready": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})


if __name__ == "__main__":
    main()
