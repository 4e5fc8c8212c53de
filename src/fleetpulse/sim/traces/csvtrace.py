"""CSV traces with a header row.

Columns are matched by name, case-insensitively: time (``time``, ``ts``, ``timestamp``,
``datetime``), ``lat``/``latitude``, ``lon``/``lng``/``longitude``, and optionally speed
in km/h (``speed_kmh``, ``speed``), heading (``heading_deg``, ``heading``, ``course``,
``bearing``), altitude (``altitude_m``, ``altitude``, ``ele``, ``elevation``) and
``engine_rpm``/``rpm``. Empty optional cells are None.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from fleetpulse.sim.errors import TraceError
from fleetpulse.sim.traces.base import TracePoint, parse_float, parse_time_ms, require_float

COLUMNS = {
    "time": ("time", "ts", "timestamp", "datetime"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "lng", "longitude"),
    "speed_kmh": ("speed_kmh", "speed"),
    "heading_deg": ("heading_deg", "heading", "course", "bearing"),
    "altitude_m": ("altitude_m", "altitude", "ele", "elevation"),
    "engine_rpm": ("engine_rpm", "rpm"),
}
REQUIRED = ("time", "lat", "lon")


def read_csv(path: Path) -> list[TracePoint]:
    """Read every row of a CSV trace. A TraceError names the line of a bad value."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = _match_columns(path, reader.fieldnames or [])
        points = []
        for row in reader:
            where = f"{path} line {reader.line_num}"

            def cell(field: str, row: dict[str, str] = row) -> str | None:
                column = columns.get(field)
                return None if column is None else row.get(column)

            points.append(
                TracePoint(
                    ts_ms=parse_time_ms(cell("time"), where),
                    lat=require_float(cell("lat"), where, "lat"),
                    lon=require_float(cell("lon"), where, "lon"),
                    speed_kmh=parse_float(cell("speed_kmh"), where, "speed"),
                    heading_deg=parse_float(cell("heading_deg"), where, "heading"),
                    altitude_m=parse_float(cell("altitude_m"), where, "altitude"),
                    engine_rpm=parse_float(cell("engine_rpm"), where, "rpm"),
                )
            )
    return points


def _match_columns(path: Path, header: Sequence[str]) -> dict[str, str]:
    by_name = {name.strip().lower(): name for name in header}
    columns: dict[str, str] = {}
    for field, names in COLUMNS.items():
        match = next((by_name[name] for name in names if name in by_name), None)
        if match is not None:
            columns[field] = match
    missing = [field for field in REQUIRED if field not in columns]
    if missing:
        raise TraceError(
            f"{path}: the header has no {' or '.join(COLUMNS[missing[0]])} column. "
            f"found: {', '.join(header) or 'no header'}"
        )
    return columns
