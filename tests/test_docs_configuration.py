"""docs/configuration.md and examples/fleetpulse.toml against the settings in fleetpulse.config.

The tables of docs/configuration.md must list every key of every settings section with
its default, and examples/fleetpulse.toml must load and match the example in that page.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect
import pytest

from fleetpulse.config import Settings, load_settings
from fleetpulse.process.geo import compile_geofences

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION_MD = ROOT / "docs" / "configuration.md"
EXAMPLE_TOML = ROOT / "examples" / "fleetpulse.toml"

# The Default cell of a key without a default, and of a key whose default is None.
REQUIRED = "required"
UNSET = "unset"

_BACKTICKED = re.compile(r"`([^`]+)`")
_TOML_HEADER = re.compile(r"^\[\[?([A-Za-z_]+)[^\]]*\]\]?\s*$")
# A key line of the example, active or commented out: `key = value` or `# key = value`.
_KEY_LINE = re.compile(r"^(#\s*)?([a-z][a-z0-9_]*)\s*=\s*(.*)$")


def section_structs() -> dict[str, tuple[str, msgspec.inspect.StructType]]:
    """Map each field of Settings to its TOML header and the struct of its entries.

    A struct field is a table (``[server]``), a dict of structs a table per key
    (``[vehicles."ID"]``) and a list of structs an array of tables (``[[geofences]]``).
    """
    settings_info = msgspec.inspect.type_info(Settings)
    assert isinstance(settings_info, msgspec.inspect.StructType)
    sections: dict[str, tuple[str, msgspec.inspect.StructType]] = {}
    for field in settings_info.fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.StructType):
            sections[field.name] = (f"[{field.name}]", kind)
        elif isinstance(kind, msgspec.inspect.DictType):
            assert isinstance(kind.value_type, msgspec.inspect.StructType), field.name
            sections[field.name] = (f'[{field.name}."ID"]', kind.value_type)
        elif isinstance(kind, msgspec.inspect.ListType):
            assert isinstance(kind.item_type, msgspec.inspect.StructType), field.name
            sections[field.name] = (f"[[{field.name}]]", kind.item_type)
        else:
            raise AssertionError(f"Settings.{field.name} has a type this test cannot walk")
    return sections


SECTIONS = section_structs()


def table_rows(markdown: str, header: str) -> dict[str, list[str]]:
    """Return the table rows under the heading that names ``header`` in backticks, by key.

    The section runs to the next heading. Its rows are the table lines whose first cell
    is a key in backticks.
    """
    lines = markdown.splitlines()
    heading = f"`{header}`"
    starts = [i for i, line in enumerate(lines) if line.startswith("#") and heading in line]
    assert starts, f"docs/configuration.md has no heading naming {heading}"

    rows: dict[str, list[str]] = {}
    for line in lines[starts[0] + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def field_default(field: msgspec.inspect.Field) -> Any:
    """Return a field's default, or REQUIRED for a field without one."""
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return REQUIRED


def default_problem(key: str, cell: str, default: Any) -> str | None:
    """Describe how a documented Default cell differs from the code's default, or None."""
    if default is REQUIRED or default is None:
        expected = REQUIRED if default is REQUIRED else UNSET
        return None if cell == expected else f"{key}: documented {cell!r}, expected {expected!r}"

    literal = _BACKTICKED.search(cell)
    if literal is None:
        return f"{key}: documented {cell!r} has no TOML value in backticks"
    documented = tomllib.loads(f"v = {literal.group(1)}")["v"]
    if documented != default or type(documented) is not type(default):
        return f"{key}: documented {literal.group(1)}, but the default is {default!r}"
    return None


def missing_keys(markdown: str, name: str) -> list[str]:
    header, struct = SECTIONS[name]
    rows = table_rows(markdown, header)
    return [field.name for field in struct.fields if field.name not in rows]


def example_keys(text: str) -> dict[str, list[tuple[str, str, bool]]]:
    """Return (key, value, commented out) for each key line of a TOML file, by section."""
    keys: dict[str, list[tuple[str, str, bool]]] = {}
    section: str | None = None
    for line in text.splitlines():
        header = _TOML_HEADER.match(line)
        if header is not None:
            section = header.group(1)
            continue
        match = _KEY_LINE.match(line)
        if section is None or match is None:
            continue
        comment, key, value = match.groups()
        keys.setdefault(section, []).append((key, value, comment is not None))
    return keys


def documented_example(markdown: str) -> str:
    """Return the TOML block that follows the heading "Complete example"."""
    after = markdown.split("## Complete example", 1)[1]
    block = re.search(r"```toml\n(.*?)```", after, re.DOTALL)
    assert block is not None, "docs/configuration.md has no toml block under Complete example"
    return block.group(1)


@pytest.fixture(scope="module")
def markdown() -> str:
    return CONFIGURATION_MD.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_docs_list_every_key(markdown: str, name: str) -> None:
    assert missing_keys(markdown, name) == []


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_docs_list_no_unknown_key(markdown: str, name: str) -> None:
    header, struct = SECTIONS[name]
    known = {field.name for field in struct.fields}
    assert sorted(set(table_rows(markdown, header)) - known) == []


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_docs_defaults_match_code(markdown: str, name: str) -> None:
    header, struct = SECTIONS[name]
    rows = table_rows(markdown, header)
    problems = []
    for field in struct.fields:
        if field.name not in rows:
            continue
        # Columns: key, type, unit, default, effect.
        problem = default_problem(field.name, rows[field.name][3], field_default(field))
        if problem is not None:
            problems.append(problem)
    assert problems == []


def test_docs_missing_key_detected(markdown: str) -> None:
    without_port = "\n".join(
        line for line in markdown.splitlines() if not line.startswith("| `port` |")
    )
    assert missing_keys(without_port, "server") == ["port"]


def test_docs_wrong_default_detected() -> None:
    assert default_problem("port", "`8081`", 8080) is not None
    assert default_problem("retention_days", "`90`", 90.0) is not None
    assert default_problem("id", '`""`', REQUIRED) is not None


def test_example_loads() -> None:
    settings = load_settings(EXAMPLE_TOML, environ={})
    assert settings.detectors.overspeed_limit_kmh == 110.0
    assert settings.overspeed_limit_kmh("truck-7") == 90.0
    assert settings.overspeed_limit_kmh("van-1") == 110.0


def test_example_geofences() -> None:
    fences = load_settings(EXAMPLE_TOML, environ={}).geofences
    assert [fence.id for fence in fences] == ["depot-north", "old-town"]

    circle, polygon = fences
    assert circle.radius_m is not None
    assert circle.polygon is None
    assert polygon.polygon is not None
    assert len(polygon.polygon) >= 3
    assert polygon.radius_m is None


def test_example_geofences_contain_points() -> None:
    circle, polygon = compile_geofences(load_settings(EXAMPLE_TOML, environ={}).geofences)
    assert circle.center is not None
    assert circle.contains(*circle.center)
    assert not circle.contains(circle.center[0] + 0.01, circle.center[1])

    middle_lat = sum(lat for lat, _ in polygon.polygon) / len(polygon.polygon)
    middle_lon = sum(lon for _, lon in polygon.polygon) / len(polygon.polygon)
    assert polygon.contains(middle_lat, middle_lon)
    assert not polygon.contains(polygon.max_lat + 0.01, middle_lon)


def test_example_matches_docs(markdown: str) -> None:
    assert documented_example(markdown) == EXAMPLE_TOML.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_example_lists_every_key(name: str) -> None:
    _, struct = SECTIONS[name]
    listed = {key for key, _, _ in example_keys(EXAMPLE_TOML.read_text(encoding="utf-8"))[name]}
    assert sorted({field.name for field in struct.fields} - listed) == []


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_example_comments_show_defaults(name: str) -> None:
    _, struct = SECTIONS[name]
    fields = {field.name: field for field in struct.fields}
    problems = []
    for key, value, commented in example_keys(EXAMPLE_TOML.read_text(encoding="utf-8"))[name]:
        if not commented or key not in fields:
            continue
        problem = default_problem(key, f"`{value}`", field_default(fields[key]))
        if problem is not None:
            problems.append(problem)
    assert problems == []
