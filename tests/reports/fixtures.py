"""A fixed set of trips and events of three vehicles over two UTC days, for reports.

The expected figures in the tests are worked out by hand from the values here.
"""

from __future__ import annotations

from pathlib import Path

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.vocabulary import HARSH_ACCELERATION, HARSH_BRAKING, IDLING, OVERSPEED
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.sqlite import SqliteStore
from tests.store.store_helpers import make_settings, make_snapshot

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
# 2026-11-02T00:00:00Z and the day after.
DAY0_MS = 1_793_577_600_000
DAY1_MS = DAY0_MS + 24 * HOUR_MS


def trip(
    device_id: str,
    start_ms: int,
    distance_m: float,
    duration_s: float,
    idle_s: float,
    max_speed_kmh: float,
    closed: bool = True,
) -> Trip:
    return Trip(
        device_id=device_id,
        start_ts_ms=start_ms,
        start_lat=48.1,
        start_lon=11.5,
        end_ts_ms=start_ms + int(duration_s * 1000) if closed else None,
        distance_m=distance_m,
        duration_s=duration_s,
        max_speed_kmh=max_speed_kmh,
        avg_speed_kmh=distance_m / duration_s * 3.6,
        idle_s=idle_s,
    )


def event(device_id: str, ts_ms: int, type_: str, **details: object) -> Event:
    return Event(device_id=device_id, ts_ms=ts_ms, type=type_, severity="warning", details=details)


def fixed_batch() -> ProcessedBatch:
    """v1 drives on both days, v2 on the first day only, v3 never."""
    trips = [
        trip("v1", DAY0_MS + 8 * HOUR_MS, 25_000.0, 1_800.0, 300.0, 130.0),
        trip("v1", DAY0_MS + 17 * HOUR_MS, 15_000.0, 1_200.0, 0.0, 90.0, closed=False),
        trip("v1", DAY1_MS + 9 * HOUR_MS, 10_000.0, 900.0, 60.0, 70.0),
        trip("v2", DAY0_MS + 10 * HOUR_MS, 5_000.0, 600.0, 0.0, 60.0),
    ]
    events = [
        event(
            "v1", DAY0_MS + 8 * HOUR_MS + 10 * MINUTE_MS, OVERSPEED, duration_s=90.0, ongoing=False
        ),
        event("v1", DAY0_MS + 8 * HOUR_MS + 20 * MINUTE_MS, HARSH_BRAKING, ongoing=False),
        event("v1", DAY0_MS + 17 * HOUR_MS + 5 * MINUTE_MS, HARSH_ACCELERATION, ongoing=False),
        # Not counted by reports.
        event("v1", DAY0_MS + 9 * HOUR_MS, IDLING, idle_after_s=300.0),
    ]
    vehicles = [make_snapshot(device_id, DAY1_MS) for device_id in ("v1", "v2", "v3")]
    return ProcessedBatch(trips=trips, events=events, vehicles=vehicles)


async def open_sqlite(data_dir: Path) -> SqliteStore:
    store = SqliteStore(make_settings("sqlite", data_dir))
    await store.start()
    return store
