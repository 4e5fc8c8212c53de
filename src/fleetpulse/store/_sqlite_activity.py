"""The hourly activity aggregates of the embedded store (table ``vehicle_hours``).

One row per vehicle and UTC hour in which a stored trip started or a counted event
happened. A row is recomputed from the ``trips`` and ``events`` tables, never
incremented. So a batch written again, an open trip updated batch after batch and an
event emitted again at its end all leave the row as a fresh computation would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.vocabulary import HARSH_ACCELERATION, HARSH_BRAKING, OVERSPEED
from fleetpulse.store.base import ACTIVITY_HOUR_MS, VehicleActivity

# The event types the aggregates count. Other events do not touch vehicle_hours.
COUNTED_EVENT_TYPES = frozenset((OVERSPEED, HARSH_BRAKING, HARSH_ACCELERATION))

ACTIVITY_COLUMNS = (
    "device_id, hour_ms, distance_m, driving_s, idle_s, trips, stops, max_speed_kmh,"
    " overspeeds, overspeed_s, harsh_brakings, harsh_accelerations"
)

CREATE_TABLE = """
-- hour_ms is the start of a UTC hour. A trip counts in the hour it started, whole, even
-- when it runs into later hours. An event counts in the hour of its ts_ms.
CREATE TABLE vehicle_hours (
    device_id TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    distance_m REAL NOT NULL,
    driving_s REAL NOT NULL,
    idle_s REAL NOT NULL,
    trips INTEGER NOT NULL,
    stops INTEGER NOT NULL,
    max_speed_kmh REAL NOT NULL,
    overspeeds INTEGER NOT NULL,
    overspeed_s REAL NOT NULL,
    harsh_brakings INTEGER NOT NULL,
    harsh_accelerations INTEGER NOT NULL,
    PRIMARY KEY (device_id, hour_ms)
) WITHOUT ROWID
"""

_HOUR = ACTIVITY_HOUR_MS
_TYPES_SQL = ", ".join(f"'{name}'" for name in sorted(COUNTED_EVENT_TYPES))


def _hour_of(column: str) -> str:
    # SQLite's % keeps the sign of the dividend, so this floors negative times too, as
    # Python's % does in hour_of().
    return f"{column} - (({column} % {_HOUR}) + {_HOUR}) % {_HOUR}"


# The (device_id, hour_ms) keys to recompute, sent as one JSON array of pairs.
KEYS_FROM_JSON = """
SELECT DISTINCT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)
"""
# Every key that has data, for the migration that creates the table on an existing file.
KEYS_FROM_ALL = f"""
SELECT device_id, {_hour_of("start_ts_ms")} FROM trips
UNION
SELECT device_id, {_hour_of("ts_ms")} FROM events WHERE type IN ({_TYPES_SQL})
"""


def refresh_statement(keys_sql: str) -> str:
    """Build the statement that recomputes the vehicle_hours rows of the keys ``keys_sql``
    selects, from the trips and events tables.

    Driving time is a trip's duration minus its idle time (the stops inside it). Stops
    are trips that ended. An ongoing overspeed counts with its duration so far.
    """
    return f"""
WITH keys(device_id, hour_ms) AS ({keys_sql}),
trip_sums AS (
    SELECT k.device_id, k.hour_ms,
        TOTAL(t.distance_m) AS distance_m,
        TOTAL(t.duration_s - t.idle_s) AS driving_s,
        TOTAL(t.idle_s) AS idle_s,
        COUNT(t.start_ts_ms) AS trips,
        COUNT(t.end_ts_ms) AS stops,
        COALESCE(MAX(t.max_speed_kmh), 0.0) AS max_speed_kmh
    FROM keys AS k LEFT JOIN trips AS t
        ON t.device_id = k.device_id
        AND t.start_ts_ms >= k.hour_ms AND t.start_ts_ms < k.hour_ms + {_HOUR}
    GROUP BY k.device_id, k.hour_ms
),
event_sums AS (
    SELECT k.device_id, k.hour_ms,
        COUNT(CASE WHEN e.type = '{OVERSPEED}' THEN 1 END) AS overspeeds,
        TOTAL(CASE WHEN e.type = '{OVERSPEED}'
            THEN json_extract(e.details, '$.duration_s') END) AS overspeed_s,
        COUNT(CASE WHEN e.type = '{HARSH_BRAKING}' THEN 1 END) AS harsh_brakings,
        COUNT(CASE WHEN e.type = '{HARSH_ACCELERATION}' THEN 1 END) AS harsh_accelerations
    FROM keys AS k LEFT JOIN events AS e
        ON e.device_id = k.device_id
        AND e.ts_ms >= k.hour_ms AND e.ts_ms < k.hour_ms + {_HOUR}
        AND e.type IN ({_TYPES_SQL})
    GROUP BY k.device_id, k.hour_ms
)
INSERT OR REPLACE INTO vehicle_hours ({ACTIVITY_COLUMNS})
SELECT t.device_id, t.hour_ms, t.distance_m, t.driving_s, t.idle_s, t.trips, t.stops,
    t.max_speed_kmh, e.overspeeds, e.overspeed_s, e.harsh_brakings, e.harsh_accelerations
FROM trip_sums AS t JOIN event_sums AS e
    ON e.device_id = t.device_id AND e.hour_ms = t.hour_ms
"""


REFRESH_KEYS = refresh_statement(KEYS_FROM_JSON)
REFRESH_ALL = refresh_statement(KEYS_FROM_ALL)

# The sums of a vehicle's hours in a range, for every known vehicle. The join walks the
# vehicles table and reads each vehicle's hours by primary key range, so the cost
# follows the rows in the range and not the size of the table.
FLEET_SUMS = """
SELECT v.device_id, ?,
    TOTAL(h.distance_m), TOTAL(h.driving_s), TOTAL(h.idle_s),
    COALESCE(SUM(h.trips), 0), COALESCE(SUM(h.stops), 0),
    COALESCE(MAX(h.max_speed_kmh), 0.0),
    COALESCE(SUM(h.overspeeds), 0), TOTAL(h.overspeed_s),
    COALESCE(SUM(h.harsh_brakings), 0), COALESCE(SUM(h.harsh_accelerations), 0)
FROM vehicles AS v LEFT JOIN vehicle_hours AS h
    ON h.device_id = v.device_id AND h.hour_ms >= ? AND h.hour_ms < ?
GROUP BY v.device_id
ORDER BY v.device_id
"""

VEHICLE_HOURS = f"""
SELECT {ACTIVITY_COLUMNS} FROM vehicle_hours
WHERE device_id = ? AND hour_ms >= ? AND hour_ms < ?
ORDER BY hour_ms
"""

# Hours that ended before the retention cutoff, deleted with the trips and events.
PURGE_HOURS = f"DELETE FROM vehicle_hours WHERE hour_ms + {_HOUR} <= ?"


def hour_of(ts_ms: int) -> int:
    """Return the start of the UTC hour that contains ``ts_ms`` (epoch milliseconds)."""
    return ts_ms - ts_ms % _HOUR


def touched_keys(trips: Iterable[Trip], events: Iterable[Event]) -> list[tuple[str, int]]:
    """Return the (device_id, hour_ms) rows that the trips and events of a batch change."""
    keys = {(trip.device_id, hour_of(trip.start_ts_ms)) for trip in trips}
    keys.update(
        (event.device_id, hour_of(event.ts_ms))
        for event in events
        if event.type in COUNTED_EVENT_TYPES
    )
    return sorted(keys)


def refresh(connection: sqlite3.Connection, keys: list[tuple[str, int]]) -> None:
    """Recompute the vehicle_hours rows of ``keys`` in the caller's transaction."""
    if keys:
        connection.execute(REFRESH_KEYS, (msgspec.json.encode(keys).decode(),))


def activity(row: tuple[Any, ...]) -> VehicleActivity:
    """Build a VehicleActivity from a row in ACTIVITY_COLUMNS order."""
    return VehicleActivity(*row)
