"""Scripted timelines of records for the processing tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from fleetpulse.config import DetectorSettings, Geofence, ProcessSettings, Settings
from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import EnrichedRecord, Record
from fleetpulse.process.geo import METRES_PER_DEGREE
from fleetpulse.process.motion import MotionState, measure_motion
from fleetpulse.process.odometer import OdometerState, check_odometer
from fleetpulse.process.sample import Sample

S = TypeVar("S")

DEVICE = "truck-7"
# 2024-05-01 08:00:00 UTC. Any fixed time works, but a real one reads better in failures.
T0_MS = 1_714_550_400_000
# Marienplatz, Munich.
HOME_LAT = 48.137154
HOME_LON = 11.576124
RECEIVE_DELAY_MS = 40


def make_settings(
    geofences: Sequence[Geofence] = (),
    offline_after_s: float | None = None,
    vehicles: dict[str, Any] | None = None,
    **detector_fields: Any,
) -> Settings:
    detectors = msgspec.structs.replace(DetectorSettings(), **detector_fields)
    process = ProcessSettings()
    if offline_after_s is not None:
        process = msgspec.structs.replace(process, offline_after_s=offline_after_s)
    return msgspec.convert(
        {
            "detectors": msgspec.to_builtins(detectors),
            "process": msgspec.to_builtins(process),
            "geofences": [msgspec.to_builtins(fence) for fence in geofences],
            "vehicles": vehicles or {},
        },
        Settings,
    )


def moved(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """Return the point ``north_m`` and ``east_m`` metres from (lat, lon)."""
    dlat = north_m / METRES_PER_DEGREE
    dlon = east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def record(
    t_s: float,
    lat: float = HOME_LAT,
    lon: float = HOME_LON,
    device_id: str = DEVICE,
    **fields: Any,
) -> Record:
    """Build a record ``t_s`` seconds after T0_MS."""
    ts_ms = T0_MS + int(t_s * 1000)
    return Record(
        device_id=device_id,
        ts_ms=ts_ms,
        lat=lat,
        lon=lon,
        received_at_ms=ts_ms + RECEIVE_DELAY_MS,
        **fields,
    )


def drive_east(
    start_s: float,
    seconds: int,
    speed_kmh: float,
    north_m: float = 0.0,
    east_m: float = 0.0,
    step_s: int = 1,
    report_speed: bool = False,
    **fields: Any,
) -> list[Record]:
    """Records of a drive due east from HOME offset by (north_m, east_m), one per step.

    With ``report_speed`` the records carry ``speed_kmh`` as a device would send it.
    """
    if report_speed:
        fields["speed_kmh"] = speed_kmh
    records = []
    for i in range(0, seconds + 1, step_s):
        lat, lon = moved(HOME_LAT, HOME_LON, north_m, east_m + speed_kmh / 3.6 * i)
        records.append(record(start_s + i, lat, lon, **fields))
    return records


def samples(records: Iterable[Record], settings: Settings) -> list[Sample]:
    """Run records through the real enrichment steps and return the samples."""
    motion = MotionState()
    odometer = OdometerState()
    previous_ms: int | None = None
    out = []
    for rec in records:
        gap_s = (rec.ts_ms - previous_ms) / 1000 if previous_ms is not None else None
        sample = Sample(record=rec, enriched=EnrichedRecord(record=rec), gap_s=gap_s)
        odometer = check_odometer(odometer, sample, settings)
        motion = measure_motion(motion, sample, settings)
        previous_ms = rec.ts_ms
        out.append(sample)
    return out


def drive(
    detect: Callable[[S, Sample, Settings], tuple[S, Sequence[Event | Trip]]],
    state: S,
    records: Iterable[Record],
    settings: Settings,
) -> tuple[S, list[Event | Trip]]:
    """Feed a timeline to one detector and return its final state and everything it emitted."""
    emitted: list[Event | Trip] = []
    for sample in samples(records, settings):
        state, found = detect(state, sample, settings)
        emitted.extend(found)
    return state, emitted


def events_of(emitted: Iterable[Event | Trip], event_type: str | None = None) -> list[Event]:
    return [
        item
        for item in emitted
        if isinstance(item, Event) and (event_type is None or item.type == event_type)
    ]


def at(t_s: float) -> int:
    """Return the ts_ms of a record ``t_s`` seconds into the timeline."""
    return T0_MS + int(t_s * 1000)
