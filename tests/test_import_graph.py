"""The package's imports run one way: no module imports itself back, however indirectly, and
whether the import runs at import time, inside a function, or for types only (TYPE_CHECKING).
A type that two modules both need lives in the module that owns it, not behind a guard."""

from __future__ import annotations

import grimp


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("respan_instrument", cache_dir=None)  # lazy and TYPE_CHECKING imports too
    cycles = sorted(
        f"{importer} -> {imported} -> ... -> {importer}"
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert not cycles, "\n".join(cycles)
