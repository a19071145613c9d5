"""Pure, on the worker: settle a finished call, build its request log, price it, encode it."""
