"""docs/api.md against the OpenAPI document, the reject reason codes and the metrics.

Every operation of ``openapi_document()`` must have a section headed ``METHOD /path`` in
backticks, every code of ``REJECT_REASONS`` a row in the reason code table, and every
metric of ``metrics.REGISTRY`` a row in the metrics table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetpulse import metrics
from fleetpulse.api.openapi import openapi_document
from fleetpulse.model.vocabulary import REJECT_REASONS

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
REASON_HEADING = "### Reject reason codes"
METRICS_HEADING = "### `GET /metrics`"

_OPERATION_HEADING = re.compile(r"^#{2,4} `([A-Z]+) (/\S*)`\s*$")
_FIRST_CELL = re.compile(r"^\| `([^`]+)` \|")


def openapi_operations() -> set[tuple[str, str]]:
    """Return (METHOD, path) for every operation of the OpenAPI document."""
    operations = set()
    for path, item in openapi_document()["paths"].items():
        for method in item:
            if method in HTTP_METHODS:
                operations.add((method.upper(), path))
    return operations


def documented_operations(markdown: str) -> set[tuple[str, str]]:
    """Return (METHOD, path) for every heading of the form ``### `GET /path` ``."""
    operations = set()
    for line in markdown.splitlines():
        match = _OPERATION_HEADING.match(line)
        if match is not None:
            operations.add((match.group(1), match.group(2)))
    return operations


def table_keys(markdown: str, heading: str) -> set[str]:
    """Return the backticked first cells of the table rows in the section under ``heading``.

    The section runs to the next heading of any level.
    """
    lines = markdown.splitlines()
    assert heading in lines, f"docs/api.md has no heading {heading!r}"
    keys = set()
    for line in lines[lines.index(heading) + 1 :]:
        if line.startswith("#"):
            break
        match = _FIRST_CELL.match(line)
        if match is not None:
            keys.add(match.group(1))
    return keys


def exposed_metric_names() -> set[str]:
    """Return the name each metric of the registry has in the /metrics text.

    prometheus_client reports a counter's family name without the ``_total`` suffix
    that the exposition adds.
    """
    names = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


@pytest.fixture(scope="module")
def markdown() -> str:
    return API_MD.read_text(encoding="utf-8")


def test_docs_cover_every_operation(markdown: str) -> None:
    missing = openapi_operations() - documented_operations(markdown)
    assert sorted(missing) == []


def test_docs_list_no_unknown_operation(markdown: str) -> None:
    unknown = documented_operations(markdown) - openapi_operations()
    assert sorted(unknown) == []


def test_docs_cover_every_reason_code(markdown: str) -> None:
    missing = set(REJECT_REASONS) - table_keys(markdown, REASON_HEADING)
    assert sorted(missing) == []


def test_docs_list_no_unknown_reason_code(markdown: str) -> None:
    unknown = table_keys(markdown, REASON_HEADING) - set(REJECT_REASONS)
    assert sorted(unknown) == []


def test_docs_cover_every_metric(markdown: str) -> None:
    missing = exposed_metric_names() - table_keys(markdown, METRICS_HEADING)
    assert sorted(missing) == []


def test_docs_list_no_unknown_metric(markdown: str) -> None:
    unknown = table_keys(markdown, METRICS_HEADING) - exposed_metric_names()
    assert sorted(unknown) == []


def test_missing_operation_detected(markdown: str) -> None:
    heading = "### `GET /v1/fleet/summary`"
    assert heading in markdown.splitlines()

    without = "\n".join(line for line in markdown.splitlines() if line != heading)
    missing = openapi_operations() - documented_operations(without)
    assert missing == {("GET", "/v1/fleet/summary")}


def test_missing_reason_code_detected(markdown: str) -> None:
    without = "\n".join(
        line for line in markdown.splitlines() if not line.startswith("| `ts_too_old` |")
    )
    missing = set(REJECT_REASONS) - table_keys(without, REASON_HEADING)
    assert missing == {"ts_too_old"}


def test_reason_code_outside_table_ignored() -> None:
    # A code that appears only in prose or in an example must not count as documented.
    section = "\n".join(
        [
            REASON_HEADING,
            "A body over the limit is rejected with `too_large`.",
            "| Code | Meaning |",
            "|---|---|",
            "| `missing_field` | a required field is missing |",
            "## Vehicles",
            "| `ts_invalid` | a row under the next heading |",
        ]
    )
    assert table_keys(section, REASON_HEADING) == {"missing_field"}


def test_missing_metric_detected(markdown: str) -> None:
    name = "fleetpulse_queue_depth_records"
    without = "\n".join(
        line for line in markdown.splitlines() if not line.startswith(f"| `{name}` |")
    )
    missing = exposed_metric_names() - table_keys(without, METRICS_HEADING)
    assert missing == {name}
