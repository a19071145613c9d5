"""Every Python that `requires-python` admits prices the same (SPEC §17).

Prices come from `genai-prices`. When its current releases need a newer Python than ours admits,
pip gives the older interpreter an older release and so an older price table (on 3.10,
genai-prices 0.1.13: 537 fewer models and 187 different prices than 0.2.5), and the same
call is priced on one Python and not on another.
"""

from __future__ import annotations

from importlib.metadata import metadata
from pathlib import Path

import tomllib
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_every_admitted_python_gets_the_price_table_this_one_has() -> None:
    ours = SpecifierSet(tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"])
    theirs = SpecifierSet(metadata("genai-prices").get("Requires-Python") or "")
    left_behind = [
        f"3.{minor}"
        for minor in range(6, 20)
        if Version(f"3.{minor}") in ours and Version(f"3.{minor}") not in theirs
    ]
    assert left_behind == [], (
        f"admitted, yet pip gives them an older genai-prices than {metadata('genai-prices')['Version']}"
    )
