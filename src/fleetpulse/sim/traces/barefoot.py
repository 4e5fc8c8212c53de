"""The JSON point format of the barefoot map matcher (BMW Car IT).

An array of ``{"point": "POINT(lon lat)", "time": "2014-09-10 06:54:07+0200", "id": ...}``:
WKT with the longitude first, and a time with a UTC offset. There is no speed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fleetpulse.sim.errors import TraceError
from fleetpulse.sim.traces.base import TracePoint, parse_time_ms, require_float

_WKT_POINT = re.compile(r"^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.IGNORECASE)


def is_barefoot(document: Any) -> bool:
    """Return whether a decoded JSON document looks like barefoot points."""
    return (
        isinstance(document, list)
        and bool(document)
        and isinstance(document[0], dict)
        and "point" in document[0]
    )


def read_barefoot(path: Path, document: Any) -> list[TracePoint]:
    """Read the points of a decoded barefoot JSON ``document``."""
    if not isinstance(document, list):
        raise TraceError(f"{path}: expected a JSON array of barefoot points")
    points: list[TracePoint] = []
    for index, item in enumerate(document):
        where = f"{path} element {index}"
        if not isinstance(item, dict) or "point" not in item or "time" not in item:
            raise TraceError(f"{where}: expected an object with 'point' and 'time'")
        match = _WKT_POINT.match(str(item["point"]))
        if match is None:
            raise TraceError(f"{where}: invalid point {item['point']!r}: expected POINT(lon lat)")
        points.append(
            TracePoint(
                ts_ms=parse_time_ms(item["time"], where),
                lon=require_float(match.group(1), where, "longitude"),
                lat=require_float(match.group(2), where, "latitude"),
            )
        )
    return points
