"""Directory put first on PYTHONPATH by `respan-instrument run`; holds only its `sitecustomize`."""
