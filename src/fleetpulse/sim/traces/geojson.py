"""GeoJSON FeatureCollections of Point features with a time property.

The time is read from the ``time``, ``timestamp`` or ``ts`` property. enviroCar tracks
carry measurements in ``properties.phenomenons.{name: {value, unit}}``. Speed comes
from "GPS Speed", else the OBD "Speed" (both km/h), and "Rpm", "GPS Bearing" and
"GPS Altitude" fill the other fields.
Plain ``speed_kmh``, ``heading_deg``, ``altitude_m`` and ``engine_rpm`` properties are
read too. Features of other geometry types are skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fleetpulse.sim.errors import TraceError
from fleetpulse.sim.traces.base import TracePoint, parse_float, parse_time_ms, require_float

log = logging.getLogger(__name__)

TIME_KEYS = ("time", "timestamp", "ts")
# Phenomenon names per field, in order of preference.
PHENOMENONS = {
    "speed_kmh": ("GPS Speed", "Speed"),
    "engine_rpm": ("Rpm",),
    "heading_deg": ("GPS Bearing",),
    "altitude_m": ("GPS Altitude",),
}


def read_geojson(path: Path, document: Any) -> list[TracePoint]:
    """Read the timed Point features of a decoded GeoJSON ``document``."""
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise TraceError(f"{path}: expected a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise TraceError(f"{path}: the FeatureCollection has no features array")

    points: list[TracePoint] = []
    skipped = 0
    for index, feature in enumerate(features):
        where = f"{path} feature {index}"
        point = _read_feature(feature, where)
        if point is None:
            skipped += 1
        else:
            points.append(point)
    if skipped:
        log.warning("%s: skipped %d features that are not timed points", path, skipped)
    return points


def _read_feature(feature: Any, where: str) -> TracePoint | None:
    if not isinstance(feature, dict):
        raise TraceError(f"{where}: expected a Feature object")
    geometry = feature.get("geometry") or {}
    properties = feature.get("properties") or {}
    time_value = next((properties[key] for key in TIME_KEYS if key in properties), None)
    if geometry.get("type") != "Point" or time_value is None:
        return None
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        raise TraceError(f"{where}: invalid Point coordinates {coordinates!r}")

    measured = {name: _measurement(properties, name, where) for name in PHENOMENONS}
    altitude_m = measured["altitude_m"]
    if altitude_m is None and len(coordinates) > 2:
        altitude_m = parse_float(coordinates[2], where, "altitude")
    return TracePoint(
        ts_ms=parse_time_ms(time_value, where),
        lon=require_float(coordinates[0], where, "longitude"),
        lat=require_float(coordinates[1], where, "latitude"),
        speed_kmh=measured["speed_kmh"],
        heading_deg=measured["heading_deg"],
        altitude_m=altitude_m,
        engine_rpm=measured["engine_rpm"],
    )


def _measurement(properties: dict[str, Any], name: str, where: str) -> float | None:
    if name in properties:
        return parse_float(properties[name], where, name)
    phenomenons = properties.get("phenomenons")
    if not isinstance(phenomenons, dict):
        return None
    for phenomenon in PHENOMENONS[name]:
        entry = phenomenons.get(phenomenon)
        if isinstance(entry, dict) and entry.get("value") is not None:
            return parse_float(entry["value"], where, phenomenon)
    return None
