"""A pytest plugin that runs the `openai` SDK's own test suite (from its sdist) with
respan_instrument instrumenting every call, as an application would: `instrument()` at start,
pointed at a loopback collector. `.ci/sdk-suite` runs the suite bare and with this plugin, and
fails when a test passes bare and fails instrumented.

    RESPAN_SDK_SUITE=lean    no OpenTelemetry provider (the lean path: SDK's own stream objects)
    RESPAN_SDK_SUITE=traced  an application's TracerProvider set (every call has a span)

Load it with `-p sdk_plugin` (this directory on PYTHONPATH). Internal errors of ours are
contained as in production (not strict mode); the summary counts our logged warnings and
many logs the collector received (a run that logged nothing did not test us).
"""

from __future__ import annotations

import logging
import os
from typing import Any

_state: dict[str, Any] = {}


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage()[:200])


def pytest_configure(config: Any) -> None:
    import tempfile

    import respan_instrument
    from respan_instrument.local import Collector

    mode = os.environ.get("RESPAN_SDK_SUITE", "lean")
    if mode not in ("lean", "traced"):
        raise ValueError(f"RESPAN_SDK_SUITE={mode!r}: lean or traced")
    os.environ.setdefault("RESPAN_SPOOL_DIR", tempfile.mkdtemp(prefix="respan-sdk-suite-"))
    collector = Collector(api_key="rk-sdk-suite")
    collector.start()
    counted = _Count()
    logging.getLogger("respan_instrument").addHandler(counted)
    kwargs: dict[str, Any] = {}
    if mode == "traced":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        kwargs["tracer_provider"] = provider
        _state["exporter"] = exporter
    respan_instrument.instrument(api_key="rk-sdk-suite", base_url=collector.url + "/api", **kwargs)
    _state.update(mode=mode, collector=collector, counted=counted)


def pytest_unconfigure(config: Any) -> None:
    import respan_instrument

    collector = _state.get("collector")
    if collector is None:
        return
    respan_instrument.flush(10)
    respan_instrument.uninstrument()
    collector.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    import respan_instrument

    collector = _state.get("collector")
    if collector is None:
        return
    respan_instrument.flush(10)
    spans = len(_state["exporter"].get_finished_spans()) if "exporter" in _state else None
    errors = _state["counted"].records
    line = f"respan_instrument ({_state['mode']}): {len(collector.logs)} logs delivered"
    if spans is not None:
        line += f", {spans} spans"
    line += f", {len(errors)} warnings of ours logged"
    terminalreporter.write_line(line)
    for message in sorted(set(errors))[:10]:
        terminalreporter.write_line(f"  {message}")
