"""The SQL texts of the PostgreSQL store.

The rows they take and return have the column order of ``_sqlite_rows``, whose
converters both backends share: JSON columns travel as JSON text, which asyncpg sends
to and returns from ``jsonb`` columns unchanged.
"""

from __future__ import annotations

from fleetpulse.model.vocabulary import (
    CRITICAL,
    DETAIL_ONGOING,
    HARSH_ACCELERATION,
    HARSH_BRAKING,
    OVERSPEED,
    SEVERITY_WARNING,
)
from fleetpulse.store._sqlite_activity import ACTIVITY_COLUMNS, COUNTED_EVENT_TYPES
from fleetpulse.store._sqlite_rows import RECORD_COLUMNS, TRIP_COLUMNS
from fleetpulse.store.base import ACTIVITY_HOUR_MS

RECORD_COLUMN_NAMES = tuple(name.strip() for name in RECORD_COLUMNS.split(","))

# pg_advisory_xact_lock keys ("fltp" and a number in hex). A batch that inserts events
# (or dead letters) holds its lock from the first insert to the commit, so ids are
# taken and committed in the same order. Without it a reader paging by id could see
# id 12 committed before id 11 and then skip 11.
EVENT_ID_LOCK_KEY = 0x666C_7470_0000_0003
DEAD_LETTER_ID_LOCK_KEY = 0x666C_7470_0000_0004

# A temporary table per session that COPY fills. ON COMMIT DELETE ROWS empties it at
# the end of every transaction, and a rollback too.
CREATE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS records_staging"
    " (LIKE records INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
STAGING_TABLE = "records_staging"
# A record whose key is stored already keeps the stored row.
INSERT_FROM_STAGING = (
    f"INSERT INTO records ({RECORD_COLUMNS}) SELECT {RECORD_COLUMNS} FROM records_staging"
    " ON CONFLICT (device_id, ts_ms) DO NOTHING"
)

POSITIONS = (
    f"SELECT {RECORD_COLUMNS} FROM records"
    " WHERE device_id = $1 AND ts_ms >= $2 AND ts_ms < $3 ORDER BY ts_ms LIMIT $4"
)

# A stored event takes the newer severity and details and keeps its id, unless the stored
# copy is final ("ongoing": false) and the new one ongoing, because a redelivered older
# batch must not revert an event to its ongoing copy.
UPSERT_EVENT = f"""
INSERT INTO events (device_id, ts_ms, type, severity, details) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (device_id, type, ts_ms) DO UPDATE SET
    severity = excluded.severity,
    details = excluded.details
WHERE (excluded.details -> '{DETAIL_ONGOING}') IS DISTINCT FROM 'true'::jsonb
    OR (events.details -> '{DETAIL_ONGOING}') IS DISTINCT FROM 'false'::jsonb
"""

# An open version of a trip that is closed by now is ignored. Any other replaces it.
UPSERT_TRIP = f"""
INSERT INTO trips ({TRIP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (device_id, start_ts_ms) DO UPDATE SET
    start_lat = excluded.start_lat,
    start_lon = excluded.start_lon,
    end_ts_ms = excluded.end_ts_ms,
    end_lat = excluded.end_lat,
    end_lon = excluded.end_lon,
    distance_m = excluded.distance_m,
    duration_s = excluded.duration_s,
    max_speed_kmh = excluded.max_speed_kmh,
    avg_speed_kmh = excluded.avg_speed_kmh,
    idle_s = excluded.idle_s
WHERE trips.end_ts_ms IS NULL OR excluded.end_ts_ms IS NOT NULL
"""
TRIPS = (
    f"SELECT {TRIP_COLUMNS} FROM trips"
    " WHERE device_id = $1 AND start_ts_ms >= $2 AND start_ts_ms < $3 ORDER BY start_ts_ms"
)

# A view older than the stored one (by last_ts_ms) is ignored. An equal one replaces it,
# because a view can change without a newer record (when the vehicle goes offline).
# The snapshots come as four arrays, one statement for the batch, with one snapshot per
# vehicle, because ON CONFLICT DO UPDATE cannot change one row twice in a statement.
UPSERT_VEHICLES = """
INSERT INTO vehicles (device_id, last_ts_ms, view, state)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[])
ON CONFLICT (device_id) DO UPDATE SET
    last_ts_ms = excluded.last_ts_ms,
    view = excluded.view,
    state = excluded.state
WHERE excluded.last_ts_ms >= vehicles.last_ts_ms
"""

INSERT_DEAD_LETTER = (
    "INSERT INTO dead_letters (received_at_ms, reason, detail, source, device_id, idx, raw)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)

EVENT_COUNTS = "SELECT type, count(*) FROM events WHERE ts_ms >= $1 AND ts_ms < $2 GROUP BY type"
ALERT_LEADERS = f"""
SELECT device_id, count(*) AS alerts FROM events
WHERE ts_ms >= $1 AND ts_ms < $2 AND severity IN ('{SEVERITY_WARNING}', '{CRITICAL}')
GROUP BY device_id ORDER BY alerts DESC, device_id LIMIT $3
"""
DISTANCE = "SELECT COALESCE(sum(distance_m), 0.0) FROM records WHERE ts_ms >= $1 AND ts_ms < $2"
# One statement, so all counts come from one snapshot.
COUNTS = """
SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM events),
    (SELECT count(*) FROM trips), (SELECT count(*) FROM vehicles),
    (SELECT count(*) FROM dead_letters)
"""

# Retention. Records older than the cutoff in a partition that also contains newer rows
# are deleted by ctid in chunks, in that partition alone, because ctids repeat across
# partitions. The partition name is formatted in.
PURGE_PARTITION_CHUNK = (
    'DELETE FROM "{partition}" WHERE ctid = ANY(ARRAY('
    'SELECT ctid FROM "{partition}" WHERE ts_ms < $1 LIMIT $2))'
)
PURGE_EVENTS = (
    "DELETE FROM events WHERE id = ANY(ARRAY(SELECT id FROM events WHERE ts_ms < $1 LIMIT $2))"
)
PURGE_DEAD_LETTERS = (
    "DELETE FROM dead_letters WHERE id = ANY(ARRAY("
    "SELECT id FROM dead_letters WHERE received_at_ms < $1 LIMIT $2))"
)
# An open trip counts from its start, a closed one from its end (index trips_retention).
PURGE_TRIPS = "DELETE FROM trips WHERE COALESCE(end_ts_ms, start_ts_ms) < $1"
PURGE_HOURS = f"DELETE FROM vehicle_hours WHERE hour_ms + {ACTIVITY_HOUR_MS} <= $1"

# --- hourly activity (the rules are in _sqlite_activity) ----------------------------

_HOUR = ACTIVITY_HOUR_MS
_TYPES_SQL = ", ".join(f"'{name}'" for name in sorted(COUNTED_EVENT_TYPES))
_ACTIVITY_VALUES = ", ".join(
    f"{name.strip()} = excluded.{name.strip()}" for name in ACTIVITY_COLUMNS.split(",")[2:]
)

# Recomputes the vehicle_hours rows of the (device_id, hour_ms) keys given as two
# arrays, from trips and events. Driving time is trip duration minus idle time, stops
# are trips that ended, and an ongoing overspeed counts with its duration so far.
REFRESH_HOURS = f"""
WITH keys (device_id, hour_ms) AS (
    SELECT DISTINCT device_id, hour_ms FROM unnest($1::text[], $2::bigint[])
        AS k (device_id, hour_ms)
),
trip_sums AS (
    SELECT k.device_id, k.hour_ms,
        COALESCE(sum(t.distance_m), 0.0) AS distance_m,
        COALESCE(sum(t.duration_s - t.idle_s), 0.0) AS driving_s,
        COALESCE(sum(t.idle_s), 0.0) AS idle_s,
        count(t.start_ts_ms) AS trips,
        count(t.end_ts_ms) AS stops,
        COALESCE(max(t.max_speed_kmh), 0.0) AS max_speed_kmh
    FROM keys AS k LEFT JOIN trips AS t
        ON t.device_id = k.device_id COLLATE "C"
        AND t.start_ts_ms >= k.hour_ms AND t.start_ts_ms < k.hour_ms + {_HOUR}
    GROUP BY k.device_id, k.hour_ms
),
event_sums AS (
    SELECT k.device_id, k.hour_ms,
        count(*) FILTER (WHERE e.type = '{OVERSPEED}') AS overspeeds,
        COALESCE(sum((e.details ->> 'duration_s')::double precision) FILTER (
            WHERE e.type = '{OVERSPEED}' AND jsonb_typeof(e.details -> 'duration_s') = 'number'
        ), 0.0) AS overspeed_s,
        count(*) FILTER (WHERE e.type = '{HARSH_BRAKING}') AS harsh_brakings,
        count(*) FILTER (WHERE e.type = '{HARSH_ACCELERATION}') AS harsh_accelerations
    FROM keys AS k LEFT JOIN events AS e
        ON e.device_id = k.device_id COLLATE "C"
        AND e.ts_ms >= k.hour_ms AND e.ts_ms < k.hour_ms + {_HOUR}
        AND e.type IN ({_TYPES_SQL})
    GROUP BY k.device_id, k.hour_ms
)
INSERT INTO vehicle_hours ({ACTIVITY_COLUMNS})
SELECT t.device_id, t.hour_ms, t.distance_m, t.driving_s, t.idle_s, t.trips, t.stops,
    t.max_speed_kmh, e.overspeeds, e.overspeed_s, e.harsh_brakings, e.harsh_accelerations
FROM trip_sums AS t JOIN event_sums AS e
    ON e.device_id = t.device_id AND e.hour_ms = t.hour_ms
ORDER BY t.device_id, t.hour_ms
ON CONFLICT (device_id, hour_ms) DO UPDATE SET {_ACTIVITY_VALUES}
"""

# The sums of each known vehicle's hours in a range ($1 is the range start, returned as
# start_ms). The join reads each vehicle's hours by primary key range.
FLEET_SUMS = """
SELECT v.device_id, $1::bigint,
    COALESCE(sum(h.distance_m), 0.0), COALESCE(sum(h.driving_s), 0.0),
    COALESCE(sum(h.idle_s), 0.0),
    COALESCE(sum(h.trips), 0)::bigint, COALESCE(sum(h.stops), 0)::bigint,
    COALESCE(max(h.max_speed_kmh), 0.0),
    COALESCE(sum(h.overspeeds), 0)::bigint, COALESCE(sum(h.overspeed_s), 0.0),
    COALESCE(sum(h.harsh_brakings), 0)::bigint, COALESCE(sum(h.harsh_accelerations), 0)::bigint
FROM vehicles AS v LEFT JOIN vehicle_hours AS h
    ON h.device_id = v.device_id AND h.hour_ms >= $2 AND h.hour_ms < $3
GROUP BY v.device_id
ORDER BY v.device_id
"""

VEHICLE_HOURS = f"""
SELECT {ACTIVITY_COLUMNS} FROM vehicle_hours
WHERE device_id = $1 AND hour_ms >= $2 AND hour_ms < $3
ORDER BY hour_ms
"""
