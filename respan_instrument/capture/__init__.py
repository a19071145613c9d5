"""The only code that knows the SDK's internals: the patch table and its shells, the call in flight, streams, span lifetime and metrics."""
