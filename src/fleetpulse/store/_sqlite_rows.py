"""SQL statements of the embedded store and the conversion between structs and rows.

Rows are plain tuples in column order, built without per-record dicts, because
``write`` converts every record of the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord, Record
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import DETAIL_ONGOING
from fleetpulse.store._sqlite_bulk import BulkInsert
from fleetpulse.store.base import VehicleSnapshot

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode
_view_encode = msgspec.msgpack.Encoder().encode
_view_decode = msgspec.msgpack.Decoder(VehicleView).decode
_strings_decode = msgspec.json.Decoder(list[str]).decode

# The JSON of an empty list: most records have no reasons and no flags.
_EMPTY_LIST_JSON = "[]"

# The values that record_row writes for a boolean field. PostgreSQL's COPY needs bool
# values. SQLite stores 0 and 1 either way, but the sqlite3 module binds an int faster
# than a bool (see _sqlite_bulk).
BOOLEANS: Mapping[bool | None, bool | int | None] = {True: True, False: False, None: None}
INTEGER_BOOLEANS: Mapping[bool | None, bool | int | None] = {True: 1, False: 0, None: None}

RECORD_COLUMNS = (
    "device_id, ts_ms, lat, lon, received_at_ms, speed_kmh, heading_deg, altitude_m,"
    " accuracy_m, ignition, engine_rpm, coolant_c, fuel_pct, battery_v, odometer_m, dtc,"
    " valid, attributes, source, distance_m, used_speed_kmh, motion, status, reasons, flags"
)
# The optional fields of a record and used_speed_kmh, by position in RECORD_COLUMNS.
# Devices that never send a field leave it None in every row.
RECORD_NULLABLE = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20)
RECORD_INSERT = BulkInsert(
    f"INSERT OR IGNORE INTO records ({RECORD_COLUMNS})", 25, nullable=RECORD_NULLABLE
)
INSERT_RECORD = RECORD_INSERT.single
POSITIONS = (
    f"SELECT {RECORD_COLUMNS} FROM records"
    " WHERE device_id = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms LIMIT ?"
)

# A detector emits an event again with updated details (overspeed at its confirmation,
# then at its end), so a stored event takes the newer severity and details and keeps its
# id. A redelivered older batch can carry an ongoing copy of an event that is final by
# now. That copy is ignored, as UPSERT_TRIP ignores an open copy of a closed trip.
# json_extract returns JSON true and false as the integers 1 and 0.
UPSERT_EVENT = f"""
INSERT INTO events (device_id, ts_ms, type, severity, details) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (device_id, type, ts_ms) DO UPDATE SET
    severity = excluded.severity,
    details = excluded.details
WHERE json_extract(excluded.details, '$.{DETAIL_ONGOING}') IS NOT 1
    OR json_extract(events.details, '$.{DETAIL_ONGOING}') IS NOT 0
"""
EVENT_COLUMNS = "id, device_id, ts_ms, type, severity, details"

TRIP_COLUMNS = (
    "device_id, start_ts_ms, start_lat, start_lon, end_ts_ms, end_lat, end_lon,"
    " distance_m, duration_s, max_speed_kmh, avg_speed_kmh, idle_s"
)
# A redelivered older batch can carry an open version of a trip that is closed by now.
# That version is ignored, and any other version replaces the stored figures.
TRIP_UPSERT = BulkInsert(
    f"INSERT INTO trips ({TRIP_COLUMNS})",
    12,
    """
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
""",
)
UPSERT_TRIP = TRIP_UPSERT.single
TRIPS = (
    f"SELECT {TRIP_COLUMNS} FROM trips"
    " WHERE device_id = ? AND start_ts_ms >= ? AND start_ts_ms < ? ORDER BY start_ts_ms"
)

# A view older than the stored one (by last_ts_ms) is rejected, so a redelivered batch
# cannot move a vehicle back in time. An equal one replaces it, because a view can
# change without a newer record (when the vehicle goes offline, for example).
VEHICLE_UPSERT = BulkInsert(
    "INSERT INTO vehicles (device_id, last_ts_ms, view, state)",
    4,
    """
ON CONFLICT (device_id) DO UPDATE SET
    last_ts_ms = excluded.last_ts_ms,
    view = excluded.view,
    state = excluded.state
WHERE excluded.last_ts_ms >= vehicles.last_ts_ms
""",
)
UPSERT_VEHICLE = VEHICLE_UPSERT.single

INSERT_DEAD_LETTER = (
    "INSERT INTO dead_letters (received_at_ms, reason, detail, source, device_id, idx, raw)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
DEAD_LETTER_COLUMNS = "id, received_at_ms, reason, detail, source, device_id, idx, raw"


def record_row(
    enriched: EnrichedRecord, booleans: Mapping[bool | None, bool | int | None] = BOOLEANS
) -> tuple[Any, ...]:
    """Return the ``records`` row of an enriched record, in RECORD_COLUMNS order.

    ``booleans`` maps the values of the boolean fields to what the row holds.
    """
    record = enriched.record
    dtc = record.dtc
    attributes = record.attributes
    reasons = enriched.reasons
    flags = enriched.flags
    return (
        record.device_id,
        record.ts_ms,
        record.lat,
        record.lon,
        record.received_at_ms,
        record.speed_kmh,
        record.heading_deg,
        record.altitude_m,
        record.accuracy_m,
        booleans[record.ignition],
        record.engine_rpm,
        record.coolant_c,
        record.fuel_pct,
        record.battery_v,
        record.odometer_m,
        None if dtc is None else _json_encode(dtc).decode(),
        booleans[record.valid],
        None if attributes is None else _json_encode(attributes).decode(),
        record.source,
        enriched.distance_m,
        enriched.speed_kmh,
        enriched.motion,
        enriched.status,
        _json_encode(reasons).decode() if reasons else _EMPTY_LIST_JSON,
        _json_encode(flags).decode() if flags else _EMPTY_LIST_JSON,
    )


def _optional_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def enriched_record(row: tuple[Any, ...]) -> EnrichedRecord:
    """Build an enriched record from a row selected with RECORD_COLUMNS."""
    record = Record(
        device_id=row[0],
        ts_ms=row[1],
        lat=row[2],
        lon=row[3],
        received_at_ms=row[4],
        speed_kmh=row[5],
        heading_deg=row[6],
        altitude_m=row[7],
        accuracy_m=row[8],
        ignition=_optional_bool(row[9]),
        engine_rpm=row[10],
        coolant_c=row[11],
        fuel_pct=row[12],
        battery_v=row[13],
        odometer_m=row[14],
        dtc=None if row[15] is None else _strings_decode(row[15]),
        valid=_optional_bool(row[16]),
        attributes=None if row[17] is None else _json_decode(row[17]),
        source=row[18],
    )
    return EnrichedRecord(
        record=record,
        distance_m=row[19],
        speed_kmh=row[20],
        motion=row[21],
        status=row[22],
        reasons=_strings_decode(row[23]),
        flags=_strings_decode(row[24]),
    )


def event_row(event: Event) -> tuple[Any, ...]:
    """Return the ``events`` row of an event, without the id the store assigns."""
    return (
        event.device_id,
        event.ts_ms,
        event.type,
        event.severity,
        _json_encode(event.details).decode(),
    )


def stored_event(row: tuple[Any, ...]) -> tuple[int, Event]:
    """Return the id and the event of a row selected with EVENT_COLUMNS."""
    event = Event(
        device_id=row[1], ts_ms=row[2], type=row[3], severity=row[4], details=_json_decode(row[5])
    )
    return row[0], event


def trip_row(trip: Trip) -> tuple[Any, ...]:
    """Return the ``trips`` row of a trip, in TRIP_COLUMNS order."""
    return msgspec.structs.astuple(trip)


def trip(row: tuple[Any, ...]) -> Trip:
    """Build a trip from a row selected with TRIP_COLUMNS."""
    return Trip(*row)


def vehicle_row(snapshot: VehicleSnapshot) -> tuple[Any, ...]:
    """Return the ``vehicles`` row of a vehicle snapshot."""
    view = snapshot.view
    return (view.device_id, view.last_ts_ms, _view_encode(view), snapshot.state)


def vehicle_view(blob: bytes) -> VehicleView:
    """Decode the ``view`` column of the ``vehicles`` table."""
    return _view_decode(blob)


def dead_letter_row(letter: DeadLetter) -> tuple[Any, ...]:
    """Return the ``dead_letters`` row of a dead letter, without the id the store assigns."""
    return (
        letter.received_at_ms,
        letter.reason,
        letter.detail,
        letter.source,
        letter.device_id,
        letter.index,
        letter.raw,
    )


def stored_dead_letter(row: tuple[Any, ...]) -> tuple[int, DeadLetter]:
    """Return the id and the dead letter of a row selected with DEAD_LETTER_COLUMNS."""
    letter = DeadLetter(
        received_at_ms=row[1],
        reason=row[2],
        detail=row[3],
        source=row[4],
        device_id=row[5],
        index=row[6],
        raw=row[7],
    )
    return row[0], letter
