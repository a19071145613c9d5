"""Loopback test servers: an OpenAI-compatible stub and a Respan-compatible log collector."""

from .collector import Collector, CollectorRequest
from .openai_stub import OpenAIStub, StubRequest

__all__ = ["Collector", "CollectorRequest", "OpenAIStub", "StubRequest"]
