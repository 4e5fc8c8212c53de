"""The recorded 1 Hz Munich drive (tests/data/traces/PROVENANCE.md) through the engine."""

from __future__ import annotations

import json
import re
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from fleetpulse.config import Settings
from fleetpulse.model.event import Trip
from fleetpulse.model.record import EnrichedRecord, Record
from fleetpulse.model.vocabulary import FLAG_GPS_JUMP, GPS_JUMP
from fleetpulse.process.batch import process_records
from fleetpulse.process.geo import haversine_m
from fleetpulse.process.state import VehicleState, decode_state, encode_state

TRACE = Path(__file__).parents[1] / "data" / "traces" / "barefoot_munich_x0001-001_1hz.json"
POINT = re.compile(r"POINT\(([-0-9.]+) ([-0-9.]+)\)")
DEVICE = "munich-x0001"
# The processor hands out batches of this many records, with the state saved between.
BATCH_RECORDS = 100


def parse_time_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z").timestamp() * 1000)


def load_trace() -> list[Record]:
    records = []
    for point in json.loads(TRACE.read_text()):
        match = POINT.fullmatch(point["point"])
        assert match is not None, point
        lon, lat = float(match.group(1)), float(match.group(2))
        ts_ms = parse_time_ms(point["time"])
        records.append(
            Record(device_id=DEVICE, ts_ms=ts_ms, lat=lat, lon=lon, received_at_ms=ts_ms)
        )
    return records


def path_length_m(records: list[Record], jump_speed_kmh: float) -> float:
    """Sum the hops of the trace, leaving out hops faster than ``jump_speed_kmh``."""
    total_m = 0.0
    for before, after in pairwise(records):
        hop_m = haversine_m(before.lat, before.lon, after.lat, after.lon)
        elapsed_s = (after.ts_ms - before.ts_ms) / 1000
        if hop_m / elapsed_s * 3.6 <= jump_speed_kmh:
            total_m += hop_m
    return total_m


@pytest.fixture(scope="module")
def trace() -> list[Record]:
    return load_trace()


@pytest.fixture(scope="module")
def processed(trace: list[Record]) -> tuple[list[EnrichedRecord], list, dict[int, Trip]]:
    settings = Settings()
    states: dict[str, VehicleState] = {}
    enriched: list[EnrichedRecord] = []
    events: list = []
    trips: dict[int, Trip] = {}
    for start in range(0, len(trace), BATCH_RECORDS):
        batch = process_records(
            states, trace[start : start + BATCH_RECORDS], settings, trace[-1].ts_ms
        )
        enriched += batch.records
        events += batch.events
        # The store replaces a trip by its start, so the newest version wins.
        trips.update({trip.start_ts_ms: trip for trip in batch.trips})
        states = {DEVICE: decode_state(encode_state(states[DEVICE]))}
    return enriched, events, trips


def test_munich_trace_parsed(trace: list[Record]) -> None:
    assert len(trace) == 1194
    assert trace[0].ts_ms == parse_time_ms("2014-09-10 06:54:07+0200")
    assert all(record.has_fix for record in trace)


def test_munich_trip_distance(trace: list[Record], processed: tuple) -> None:
    _, _, trips = processed
    expected_m = path_length_m(trace, Settings().detectors.gps_jump_speed_kmh)
    total_m = sum(trip.distance_m for trip in trips.values())
    assert total_m == pytest.approx(expected_m, rel=0.05)


def test_munich_jump_flagged(processed: tuple) -> None:
    enriched, events, _ = processed
    jump_ms = parse_time_ms("2014-09-10 07:04:27+0200")
    flagged = [r.record.ts_ms for r in enriched if FLAG_GPS_JUMP in r.flags]
    assert flagged == [jump_ms]
    (event,) = [e for e in events if e.type == GPS_JUMP]
    assert event.ts_ms == jump_ms
    assert event.details["distance_m"] == pytest.approx(470.0, abs=5.0)


def test_munich_jump_adds_no_distance(processed: tuple) -> None:
    enriched, _, _ = processed
    (jump,) = [r for r in enriched if FLAG_GPS_JUMP in r.flags]
    assert jump.distance_m == 0.0


def test_munich_stops_add_no_distance(trace: list[Record], processed: tuple) -> None:
    enriched, _, _ = processed
    assert [r.record.ts_ms for r in enriched] == [r.ts_ms for r in trace]
    repeated = [
        after
        for before, after in pairwise(enriched)
        if (before.record.lat, before.record.lon) == (after.record.lat, after.record.lon)
    ]
    # The drive stops at traffic lights: runs of identical positions.
    assert len(repeated) > 100
    assert all(r.distance_m == 0.0 for r in repeated)
    assert all(r.motion != "moving" for r in repeated)
