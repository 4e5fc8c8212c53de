"""The layout of store.db and the steps that create or upgrade it.

PRAGMA user_version is the version of the layout a file has. Version 1 is below, and
version 2 adds the hourly activity aggregates behind reports (``_sqlite_activity``).
Times are epoch milliseconds (UTC), distances metres and speeds km/h. List and object
fields are JSON text, and booleans are 0 or 1.
"""

from __future__ import annotations

import sqlite3

from fleetpulse.errors import StoreError
from fleetpulse.store import _sqlite_activity as activity

SCHEMA_VERSION = 2

SCHEMA_V1 = (
    """
-- Enriched records: every Record field, then what the processing chain added.
-- used_speed_kmh is the speed the detectors used (reported, or derived from fixes).
-- A rowid table, not WITHOUT ROWID, because records of many vehicles arrive
-- interleaved: the wide rows are appended and only the narrow unique index takes the
-- scattered inserts. Measured with SQLite 3.40 on a 2-core VM (200,000 records of
-- 2,000 vehicles, 5,000 per transaction), this wrote about 1.5 times faster.
CREATE TABLE records (
    device_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    received_at_ms INTEGER NOT NULL,
    speed_kmh REAL,
    heading_deg REAL,
    altitude_m REAL,
    accuracy_m REAL,
    ignition INTEGER,
    engine_rpm REAL,
    coolant_c REAL,
    fuel_pct REAL,
    battery_v REAL,
    odometer_m REAL,
    dtc TEXT,
    valid INTEGER,
    attributes TEXT,
    source TEXT NOT NULL,
    distance_m REAL NOT NULL,
    used_speed_kmh REAL,
    motion TEXT NOT NULL,
    status TEXT NOT NULL,
    reasons TEXT NOT NULL,
    flags TEXT NOT NULL
)
""",
    """
-- The identity of a record. INSERT OR IGNORE skips a record whose key is stored.
CREATE UNIQUE INDEX records_device_ts ON records (device_id, ts_ms)
""",
    """
-- Serves retention and the fleet distance sum. With distance_m it is a covering index.
CREATE INDEX records_ts ON records (ts_ms, distance_m)
""",
    """
-- AUTOINCREMENT: ids never go back, not even after retention deleted the newest rows,
-- so a client resuming from an id misses nothing.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    details TEXT NOT NULL,
    UNIQUE (device_id, type, ts_ms)
)
""",
    """
CREATE INDEX events_ts ON events (ts_ms)
""",
    """
CREATE INDEX events_device_ts ON events (device_id, ts_ms)
""",
    """
CREATE INDEX events_type_ts ON events (type, ts_ms)
""",
    """
-- end_ts_ms and the end position are NULL while the trip is open.
CREATE TABLE trips (
    device_id TEXT NOT NULL,
    start_ts_ms INTEGER NOT NULL,
    start_lat REAL NOT NULL,
    start_lon REAL NOT NULL,
    end_ts_ms INTEGER,
    end_lat REAL,
    end_lon REAL,
    distance_m REAL NOT NULL,
    duration_s REAL NOT NULL,
    max_speed_kmh REAL NOT NULL,
    avg_speed_kmh REAL NOT NULL,
    idle_s REAL NOT NULL,
    PRIMARY KEY (device_id, start_ts_ms)
) WITHOUT ROWID
""",
    """
-- view is the msgpack encoding of VehicleView, state the processor's opaque blob.
-- last_ts_ms copies view.last_ts_ms so an upsert can reject an older view.
CREATE TABLE vehicles (
    device_id TEXT PRIMARY KEY,
    last_ts_ms INTEGER NOT NULL,
    view BLOB NOT NULL,
    state BLOB NOT NULL
) WITHOUT ROWID
""",
    """
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL,
    device_id TEXT,
    idx INTEGER,
    raw TEXT NOT NULL
)
""",
    """
CREATE INDEX dead_letters_received ON dead_letters (received_at_ms)
""",
)

# The aggregates of a file written before version 2 are computed from its trips and
# events, so reports cover the data stored before the upgrade.
SCHEMA_V2 = (activity.CREATE_TABLE, activity.REFRESH_ALL)

# MIGRATIONS[n] lists the statements that turn a file of version n - 1 into version n.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: SCHEMA_V1, 2: SCHEMA_V2}


def migrate(connection: sqlite3.Connection) -> int:
    """Create or upgrade the schema inside the caller's transaction and return the version
    the file had before.

    Raises StoreError when the file was written by a newer fleetpulse.
    """
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store.db has schema version {version}, newer than {SCHEMA_VERSION} "
            "that this fleetpulse reads; upgrade fleetpulse"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        # One execute() per statement: executescript() would commit the caller's
        # transaction.
        for statement in MIGRATIONS[target]:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {target}")
    return version
