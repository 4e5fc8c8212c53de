"""Readers of recorded vehicle traces: GPX, GeoJSON, CSV and barefoot JSON.

``read_trace(path)`` detects the format by extension, then by content, and returns the
points in time order. Readers never invent values a trace lacks, speed in particular:
the server derives speed from the fixes when a record has none.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from fleetpulse.sim.errors import TraceError
from fleetpulse.sim.traces.barefoot import is_barefoot, read_barefoot
from fleetpulse.sim.traces.base import TracePoint, in_time_order
from fleetpulse.sim.traces.csvtrace import read_csv
from fleetpulse.sim.traces.geojson import read_geojson
from fleetpulse.sim.traces.gpx import read_gpx

__all__ = ["FORMATS", "TracePoint", "detect_format", "read_trace"]

log = logging.getLogger(__name__)

FORMATS = ("gpx", "geojson", "barefoot", "csv")
_EXTENSIONS = {".gpx": "gpx", ".geojson": "geojson", ".csv": "csv"}


def detect_format(path: Path) -> str:
    """Return one of FORMATS: from the extension, else from the first bytes and structure."""
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension is not None:
        return by_extension
    head = _read_head(path).lstrip()
    if head.startswith(b"<"):
        return "gpx"
    if head.startswith((b"{", b"[")):
        document = _load_json(path)
        if isinstance(document, dict) and document.get("type") == "FeatureCollection":
            return "geojson"
        if is_barefoot(document):
            return "barefoot"
        raise TraceError(
            f"{path}: JSON that is neither a GeoJSON FeatureCollection nor barefoot points"
        )
    return "csv"


def read_trace(path: str | Path) -> list[TracePoint]:
    """Read a trace file into points sorted by time. Raises TraceError on bad input."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: file not found")
    trace_format = detect_format(path)
    if trace_format == "gpx":
        points = read_gpx(path)
    elif trace_format == "csv":
        points = read_csv(path)
    elif trace_format == "geojson":
        points = read_geojson(path, _load_json(path))
    else:
        points = read_barefoot(path, _load_json(path))
    if not points:
        raise TraceError(f"{path}: no points with a time in this {trace_format} file")
    log.info("read %d points from %s (%s)", len(points), path, trace_format)
    return in_time_order(points, str(path))


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(512)


def _load_json(path: Path) -> object:
    try:
        return msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise TraceError(f"{path}: not valid JSON ({exc})") from exc
