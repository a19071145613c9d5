"""The door shut behind the surfaces (SPEC §13): every resource method of the installed `openai`
client, sync and async, is called against a transport that records the HTTP request it makes;
each must be routed to a logged endpoint spec, or reviewed (tests/census_lists.py). A new SDK
release with a new paid surface fails here instead of passing through unseen.

The README's list of what is logged is generated from the same census (run this file with
`--readme` to rewrite it) and checked here.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import openai
import pytest
from census_lists import COVERED_ELSEWHERE, FREE, LOCAL_HELPERS, NOT_LOGGED
from sdk_census import Seen, census

from respan_instrument.endpoints import routed

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- census:logged -->", "<!-- /census:logged -->"
NEWEST_MAJOR = 3  # the README is written from the newest SDK


@lru_cache(maxsize=2)
def _census(is_async: bool) -> tuple[Seen, ...]:
    return tuple(census(is_async))


def _listed(name: str, lists: Mapping[str, str]) -> str | None:
    return next((pattern for pattern in lists if fnmatch.fnmatchcase(name, pattern)), None)


def _logged(seen: Seen) -> bool:
    return bool(seen.method) and seen.method != "websocket" and routed(seen.url, seen.method) is not None


def _verdict(seen: Seen) -> str:
    if _logged(seen):
        return "logged"
    for label, lists in (
        ("elsewhere", COVERED_ELSEWHERE),
        ("free", FREE),
        ("not logged", NOT_LOGGED),
        ("helper", LOCAL_HELPERS),
    ):
        if _listed(seen.name, lists):
            return label
    return "unreviewed"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_every_method_is_logged_or_reviewed(is_async) -> None:
    found = _census(is_async)
    assert len(found) > 40, "the census found too few methods: has the SDK's layout moved?"
    unreviewed = [
        f"{s.name}: {s.method.upper() or '(no request)'} {s.url or s.error}"
        for s in found
        if _verdict(s) == "unreviewed"
    ]
    assert not unreviewed, (
        f"openai {openai.__version__}: methods neither logged nor reviewed (route them to an endpoint "
        "spec, or add them to tests/census_lists.py after reading what they do):\n  "
        + "\n  ".join(unreviewed)
    )


def test_the_census_sees_the_known_surfaces() -> None:
    """The census itself works: the surfaces we log are found, with the URLs the specs route."""
    by_name = {s.name: s for s in _census(False)}
    assert (by_name["chat.completions.create"].method, by_name["chat.completions.create"].url) == (
        "post",
        "/chat/completions",
    )
    assert _verdict(by_name["embeddings.create"]) == "logged"
    assert _verdict(by_name["responses.retrieve"]) == "logged"  # `/responses/{id}`, a GET
    assert _verdict(by_name["files.content"]) == "logged"  # a Batch output file, when it is one
    assert _verdict(by_name["models.list"]) == "free"
    if "beta.responses.create" in by_name:  # a query string never hides a known path
        assert by_name["beta.responses.create"].url == "/responses?beta=true"
        assert _verdict(by_name["beta.responses.create"]) == "logged"


def test_sync_and_async_clients_call_the_same_urls() -> None:
    sync = {s.name: (s.method, s.url) for s in _census(False)}
    asynchronous = {s.name: (s.method, s.url) for s in _census(True)}
    assert sync.keys() == asynchronous.keys()
    differ = {n: (sync[n], asynchronous[n]) for n in sync if sync[n] != asynchronous[n] and sync[n][0]}
    assert not differ


def test_reviewed_lists_hold_no_logged_method() -> None:
    """A reviewed line naming one method that is now logged is stale (a `*` line may span
    logged methods: `files.*` holds `files.content`, logged when it is a Batch output file)."""
    stale = [
        (s.name, pattern)
        for s in _census(False)
        if _logged(s)
        for pattern in (_listed(s.name, FREE), _listed(s.name, NOT_LOGGED))
        if pattern and "*" not in pattern
    ]
    assert not stale


def logged_text(found: tuple[Seen, ...]) -> str:
    """The README's list of logged methods, grouped by resource."""
    groups: dict[str, list[str]] = {}
    for seen in found:
        if _verdict(seen) in ("logged", "elsewhere"):
            resource, _, method = seen.name.rpartition(".")
            groups.setdefault(resource, []).append(method)
    parts = [f"`{resource}.{'`/`'.join(sorted(methods))}`" for resource, methods in sorted(groups.items())]
    gaps: dict[str, list[str]] = {}
    for pattern, reason in NOT_LOGGED.items():
        gaps.setdefault(reason, []).append(f"`{pattern}`")
    return (
        f"Logged (found by the census of openai {openai.__version__}'s client, "
        "`tests/test_census.py`): " + ", ".join(parts) + ".\n\n"
        "Not logged yet (paid, reviewed, `tests/census_lists.py`): "
        + "; ".join(f"{', '.join(names)} ({reason})" for reason, names in gaps.items())
        + "."
    )


def _readme_block() -> str:
    text = README.read_text()
    match = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    assert match, f"README.md has no {START} ... {END} block"
    return match.group(1)


def test_readme_lists_what_the_census_finds_logged() -> None:
    block = _readme_block()
    found = _census(False)
    if int(openai.__version__.split(".")[0]) >= NEWEST_MAJOR:
        version = re.sub(r"openai [0-9.]+'s", f"openai {openai.__version__}'s", block)
        assert version == logged_text(found), "regenerate it: python tests/test_census.py --readme"
    else:  # an older SDK has fewer surfaces: each one it has is in the list
        names = {s.name for s in found if _verdict(s) in ("logged", "elsewhere")}
        missing = [n for n in names if f"`{n}`" not in _expanded(block)]
        assert not missing


def _expanded(block: str) -> str:
    """`a.b.x`/`y` spelled out as `a.b.x` `a.b.y`."""
    out = []
    for group in re.findall(r"`([a-z_.]+)`((?:/`[a-z_]+`)*)", block):
        head, rest = group
        resource = head.rpartition(".")[0]
        out.append(f"`{head}`")
        out.extend(f"`{resource}.{m}`" for m in re.findall(r"`([a-z_]+)`", rest))
    return " ".join(out)


def test_a_method_the_sdk_gains_fails_the_census(monkeypatch) -> None:
    """What a new SDK release with a new paid surface looks like to the census."""
    from openai.resources.embeddings import Embeddings

    def summarize(self, *, model: str, input: str):  # noqa: A002 - the SDK's own spelling
        return self._post("/summaries", body={"model": model, "input": input}, cast_to=object)

    monkeypatch.setattr(Embeddings, "summarize", summarize, raising=False)
    (seen,) = [s for s in census(False) if s.name == "embeddings.summarize"]
    assert (seen.method, seen.url) == ("post", "/summaries")
    assert _verdict(seen) == "unreviewed"


if __name__ == "__main__" and "--readme" in sys.argv:  # pragma: no cover
    text = README.read_text()
    block = f"{START}\n{logged_text(tuple(census(False)))}\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        raise SystemExit(f"put {START} and {END} where the list belongs in README.md first")
    README.write_text(text)
