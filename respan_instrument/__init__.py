"""Every call through the `openai` SDK, recorded as a span and delivered to Respan as a request log.

    import respan_instrument
    respan_instrument.instrument()
"""

from ._context import attributes
from ._setup import flush, instrument, log, uninstrument
from ._version import __version__

__all__ = ["__version__", "attributes", "flush", "instrument", "log", "uninstrument"]
