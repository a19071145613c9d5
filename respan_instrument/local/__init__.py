"""Loopback servers users run: the OpenAI-compatible stub behind `respan-instrument demo` and the
examples, and the Respan-compatible log collector behind `respan-instrument collect`. The tests
run them too; what only the tests need (failure injection, replayed answers, the Realtime
server) lives in tests/."""

from .collector import Collector, CollectorRequest
from .openai_stub import OpenAIStub, StubRequest

__all__ = ["Collector", "CollectorRequest", "OpenAIStub", "StubRequest"]
