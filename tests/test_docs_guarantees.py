"""docs/guarantees.md against the test suite: every named test exists, every guarantee names one.

A guarantee is a bullet of the page. It names its tests as ``path::test_name`` in
backticks, where ``test_name`` is a function at the top level of the file at ``path``.
Bullets under "To be backed" name proposed tests, which must not exist yet: a test
that exists belongs in the sections above.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUARANTEES_MD = ROOT / "docs" / "guarantees.md"
TO_BE_BACKED = "## To be backed"

_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def bullets(markdown: str) -> list[tuple[str, str]]:
    """Return (section heading, bullet text) for every bullet, its wrapped lines joined."""
    found: list[tuple[str, str]] = []
    section = ""
    current: list[str] | None = None
    for line in markdown.splitlines() + [""]:
        if line.startswith("- ") or line.startswith("#") or not line.strip():
            if current is not None:
                found.append((section, " ".join(current)))
                current = None
        if line.startswith("#"):
            section = line.strip()
        elif line.startswith("- "):
            current = [line[2:].strip()]
        elif current is not None and line.startswith("  "):
            current.append(line.strip())
    return found


def references(text: str) -> list[tuple[str, str]]:
    """Return the (path, test name) pairs named in ``text``."""
    return _REFERENCE.findall(text)


@cache
def defined_tests(path: str) -> frozenset[str]:
    """Return the names of the top-level test functions of a test file, or none if missing."""
    file = ROOT / path
    if not file.is_file():
        return frozenset()
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def missing_tests(markdown: str) -> list[str]:
    """Return every reference outside "To be backed" whose test does not exist."""
    missing = []
    for section, text in bullets(markdown):
        if section == TO_BE_BACKED:
            continue
        for path, name in references(text):
            if name not in defined_tests(path):
                missing.append(f"{path}::{name}")
    return missing


@pytest.fixture(scope="module")
def markdown() -> str:
    return GUARANTEES_MD.read_text(encoding="utf-8")


def test_guarantees_page_has_bullets(markdown: str) -> None:
    assert len(bullets(markdown)) >= 20


def test_guarantees_name_existing_tests(markdown: str) -> None:
    assert missing_tests(markdown) == []


def test_every_guarantee_names_a_test(markdown: str) -> None:
    unbacked = [
        text[:80] for section, text in bullets(markdown)
        if section != TO_BE_BACKED and not references(text)
    ]
    assert unbacked == []


def test_proposed_tests_not_yet_written(markdown: str) -> None:
    written = [
        f"{path}::{name}"
        for section, text in bullets(markdown) if section == TO_BE_BACKED
        for path, name in references(text)
        if name in defined_tests(path)
    ]
    assert written == [], "these tests exist: move their guarantees out of 'To be backed'"


def test_missing_test_detected() -> None:
    page = (
        "## Durability\n\n"
        "- Kept. Backed by `tests/test_docs_guarantees.py::test_no_such_test`,\n"
        "  `tests/test_docs_guarantees.py::test_missing_test_detected`.\n"
    )
    assert missing_tests(page) == ["tests/test_docs_guarantees.py::test_no_such_test"]


def test_wrapped_reference_found() -> None:
    page = "## Order\n\n- One vehicle in order. Backed by\n  `tests/a.py::test_b`.\n"
    assert [references(text) for _, text in bullets(page)] == [[("tests/a.py", "test_b")]]
