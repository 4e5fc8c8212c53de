"""GPX 1.0 and 1.1 tracks: ``trkpt`` elements with ``time`` and optional ``ele``.

Speed and course are read where present: the GPX 1.0 ``speed`` and ``course`` elements
and the same names inside extensions (Garmin TrackPointExtension v2). GPX speeds are in
m/s. Track points without a time are skipped, since a replay needs one.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from fleetpulse.sim.errors import TraceError
from fleetpulse.sim.traces.base import TracePoint, parse_float, parse_time_ms, require_float

log = logging.getLogger(__name__)


def read_gpx(path: Path) -> list[TracePoint]:
    """Read every timed track point of a GPX file, in document order."""
    # NOTE: the standard library parser expands internal entities, so read trusted files only.
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise TraceError(f"{path}: not valid XML ({exc})") from exc

    points: list[TracePoint] = []
    untimed = 0
    for number, element in enumerate(_iter_local(root, "trkpt"), start=1):
        where = f"{path} trkpt {number}"
        values = {_local_name(child.tag): (child.text or "").strip() for child in element.iter()}
        if not values.get("time"):
            untimed += 1
            continue
        speed_ms = parse_float(values.get("speed"), where, "speed")
        points.append(
            TracePoint(
                ts_ms=parse_time_ms(values["time"], where),
                lat=require_float(element.get("lat"), where, "lat"),
                lon=require_float(element.get("lon"), where, "lon"),
                speed_kmh=None if speed_ms is None else speed_ms * 3.6,
                heading_deg=parse_float(values.get("course"), where, "course"),
                altitude_m=parse_float(values.get("ele"), where, "ele"),
            )
        )
    if untimed:
        log.warning("%s: skipped %d track points without a time", path, untimed)
    return points


def _iter_local(root: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [element for element in root.iter() if _local_name(element.tag) == name]


def _local_name(tag: str) -> str:
    # ElementTree writes namespaced tags as "{uri}name".
    return tag.rsplit("}", 1)[-1]
