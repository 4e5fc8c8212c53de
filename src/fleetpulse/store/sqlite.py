"""The embedded store: a SQLite file in WAL mode, ``store.db`` in ``server.data_dir``.

Writes run on one writer thread with its own connection, and writes waiting at the
same moment share one transaction. Queries run on a few reading threads, each with its own
read-only connection, and WAL lets them read while the writer commits. Neither blocks
the event loop. The layout is in ``_sqlite_schema``, the SQL texts in ``_sqlite_rows``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from fleetpulse.errors import StoreError
from fleetpulse.model.event import Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import CRITICAL, SEVERITY_WARNING
from fleetpulse.store import _sqlite_activity as activity
from fleetpulse.store import _sqlite_rows as rows
from fleetpulse.store._sqlite_bulk import insert_rows
from fleetpulse.store._sqlite_connect import connect_writer
from fleetpulse.store._sqlite_readers import ReaderPool
from fleetpulse.store._sqlite_schema import migrate
from fleetpulse.store._sqlite_writer import SqliteWriter
from fleetpulse.store.base import (
    ACTIVITY_HOUR_MS,
    ProcessedBatch,
    Store,
    StoreCounts,
    StoredDeadLetter,
    StoredEvent,
    VehicleActivity,
)

if TYPE_CHECKING:
    from fleetpulse.config import Settings

log = logging.getLogger(__name__)

STORE_FILE = "store.db"
# Queries of the API run concurrently up to this many, because WAL readers do not block
# each other.
READER_THREADS = 4
# Inserts touch pages of the unique key index and the time index of a growing table. A
# larger cache keeps more of them in memory.
WRITER_CACHE_KIB = 64 * 1024
# Prepared statements the writer keeps. The multi-row inserts of _sqlite_bulk use up to
# 11 texts per table and set of NULL columns, at most 55 in all (records: 33, trips and
# vehicles: 11 each), and the other writes about 15. Preparing the largest of them again
# would cost about 5 ms (1,024 records, SQLite 3.40 on the 2-core benchmark VM).
WRITER_CACHED_STATEMENTS = 96
# Retention deletes this many rows per transaction, so the batches of the processor
# commit between chunks instead of waiting for one long delete.
PURGE_CHUNK_ROWS = 10_000

_PURGE_RECORDS = (
    "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE ts_ms < ? LIMIT ?)"
)
_PURGE_EVENTS = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts_ms < ? LIMIT ?)"
_PURGE_DEAD_LETTERS = (
    "DELETE FROM dead_letters WHERE id IN"
    " (SELECT id FROM dead_letters WHERE received_at_ms < ? LIMIT ?)"
)
# An open trip counts from its start, a closed one from its end.
_PURGE_TRIPS = "DELETE FROM trips WHERE COALESCE(end_ts_ms, start_ts_ms) < ?"


class SqliteStore(Store):
    """The embedded store (``[store] backend = "sqlite"``).

    ``store.synchronous`` is "full" by default: a commit survives a power loss. It has
    to, because the processor acknowledges (and so deletes) a batch in the queue once
    the store write returns. One sync per batch of thousands of records costs little.
    """

    def __init__(self, settings: Settings) -> None:
        self._data_dir = Path(settings.server.data_dir)
        self._path = self._data_dir / STORE_FILE
        self._synchronous = settings.store.synchronous
        self._writer: SqliteWriter | None = None
        self._readers: ReaderPool | None = None
        self._closed = False

    async def start(self) -> None:
        """Open or create ``store.db`` and bring its schema to the current version."""
        try:
            self._data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create data directory {self._data_dir}: {exc}") from exc

        path = self._path
        synchronous = self._synchronous
        writer = SqliteWriter(
            "store-writer",
            path,
            lambda: connect_writer(path, synchronous, WRITER_CACHE_KIB, WRITER_CACHED_STATEMENTS),
            StoreError,
        )
        writer.start()
        self._writer = writer
        old_version = await writer.submit(migrate, "store open")
        self._readers = ReaderPool("store-reader", path, READER_THREADS, StoreError)
        log.info(
            "store opened path=%s schema_version_before=%d synchronous=%s",
            path,
            old_version,
            synchronous,
        )

    async def close(self) -> None:
        """Commit pending writes, stop the threads and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            await self._writer.close()
        if self._readers is not None:
            await self._readers.close()
        log.info("store closed path=%s", self._path)

    # --- writes -------------------------------------------------------------------

    async def write(self, batch: ProcessedBatch) -> None:
        """Write a processed batch in one transaction. Writing it again changes nothing.

        Records whose key is stored already are skipped. An event whose key is stored
        replaces the stored severity and details and keeps the id, unless the stored
        details are final (``"ongoing": false``) and the new ones ongoing. A trip
        replaces the stored version unless that one is closed and the new one open. A
        vehicle snapshot replaces the stored one unless its ``last_ts_ms`` is older.
        The hourly activity of the vehicles and hours that the trips and events touch is
        recomputed in the same transaction.
        """
        if not (batch.records or batch.events or batch.trips or batch.vehicles):
            return
        await self._require_writer("store write").submit(
            partial(_write_batch, batch), "store write"
        )

    async def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Append dead letters in one transaction, shared with other pending writes."""
        if not letters:
            return
        await self._require_writer("dead letter write").submit(
            partial(_write_dead_letters, letters), "dead letter write"
        )

    async def load_states(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        """Return the saved processing state of each listed vehicle that has one."""
        if not device_ids:
            return {}
        ids_json = msgspec.json.encode(list(device_ids)).decode()
        found = await self._read(
            "SELECT device_id, state FROM vehicles"
            " WHERE device_id IN (SELECT value FROM json_each(?))",
            (ids_json,),
            "state load",
        )
        return {device_id: state for device_id, state in found}

    async def purge(self, older_than_ms: int) -> int:
        """Delete records, events and dead letters older than ``older_than_ms``, trips
        that ended (or, while open, started) before it, and the activity of hours that
        ended before it. Return the rows deleted.

        Deletes in chunks of PURGE_CHUNK_ROWS rows, each its own transaction.
        Vehicles are kept.
        """
        writer = self._require_writer("purge")
        deleted = 0
        for statement in (_PURGE_RECORDS, _PURGE_EVENTS, _PURGE_DEAD_LETTERS):
            while True:
                chunk = await writer.submit(
                    partial(_delete, statement, (older_than_ms, PURGE_CHUNK_ROWS)), "purge"
                )
                deleted += chunk
                if chunk < PURGE_CHUNK_ROWS:
                    break
        deleted += await writer.submit(partial(_delete, _PURGE_TRIPS, (older_than_ms,)), "purge")
        deleted += await writer.submit(
            partial(_delete, activity.PURGE_HOURS, (older_than_ms,)), "purge"
        )
        log.info("purged rows=%d older_than_ms=%d path=%s", deleted, older_than_ms, self._path)
        return deleted

    # --- queries ------------------------------------------------------------------

    async def vehicles(self) -> list[VehicleView]:
        """Return the latest view of every vehicle, ordered by device id."""
        found = await self._read(
            "SELECT view FROM vehicles ORDER BY device_id", (), "vehicles query"
        )
        return [rows.vehicle_view(blob) for (blob,) in found]

    async def vehicle(self, device_id: str) -> VehicleView | None:
        """Return one vehicle's latest view, or None if it never sent a record."""
        found = await self._read(
            "SELECT view FROM vehicles WHERE device_id = ?", (device_id,), "vehicle query"
        )
        return rows.vehicle_view(found[0][0]) if found else None

    async def positions(
        self, device_id: str, from_ms: int, to_ms: int, limit: int
    ) -> list[EnrichedRecord]:
        """Return at most ``limit`` records of a vehicle with from_ms <= ts_ms < to_ms,
        oldest first."""
        _check_limit(limit)
        found = await self._read(
            rows.POSITIONS, (device_id, from_ms, to_ms, limit), "positions query"
        )
        return [rows.enriched_record(row) for row in found]

    async def trips(self, device_id: str, from_ms: int, to_ms: int) -> list[Trip]:
        """Return the trips of a vehicle that started in [from_ms, to_ms), oldest first."""
        found = await self._read(rows.TRIPS, (device_id, from_ms, to_ms), "trips query")
        return [rows.trip(row) for row in found]

    async def events(
        self,
        device_id: str | None,
        event_type: str | None,
        from_ms: int,
        to_ms: int,
        limit: int,
        after_id: int = 0,
    ) -> list[StoredEvent]:
        """Return at most ``limit`` events with from_ms <= ts_ms < to_ms and id > after_id.

        With ``after_id`` 0 they are the newest, newest first. With ``after_id`` > 0
        they are the oldest after it, oldest first, so a client that resumes from the
        last id it read misses none. Ids follow the order the store first received the
        events in. ``device_id`` and ``event_type`` filter when given. Raises ValueError
        for a negative ``limit`` or ``after_id``.
        """
        _check_limit(limit)
        _check_after_id(after_id)
        clauses = ["ts_ms >= ?", "ts_ms < ?", "id > ?"]
        params: list[Any] = [from_ms, to_ms, after_id]
        if device_id is not None:
            clauses.append("device_id = ?")
            params.append(device_id)
        if event_type is not None:
            clauses.append("type = ?")
            params.append(event_type)
        params.append(limit)
        sql = (
            f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY id {_id_order(after_id)} LIMIT ?"
        )
        found = await self._read(sql, tuple(params), "events query")
        return [StoredEvent(*rows.stored_event(row)) for row in found]

    async def event_counts(self, from_ms: int, to_ms: int) -> dict[str, int]:
        """Return the number of events per type in [from_ms, to_ms)."""
        found = await self._read(
            "SELECT type, COUNT(*) FROM events WHERE ts_ms >= ? AND ts_ms < ? GROUP BY type",
            (from_ms, to_ms),
            "event counts query",
        )
        return {event_type: count for event_type, count in found}

    async def alert_leaders(self, from_ms: int, to_ms: int, limit: int) -> list[tuple[str, int]]:
        """Return (device_id, alerts) for the vehicles with the most warning or critical
        events in [from_ms, to_ms), most first, with ties in device id order."""
        _check_limit(limit)
        found = await self._read(
            "SELECT device_id, COUNT(*) AS alerts FROM events"
            " WHERE ts_ms >= ? AND ts_ms < ? AND severity IN (?, ?)"
            " GROUP BY device_id ORDER BY alerts DESC, device_id LIMIT ?",
            (from_ms, to_ms, SEVERITY_WARNING, CRITICAL, limit),
            "alert leaders query",
        )
        return [(device_id, alerts) for device_id, alerts in found]

    async def distance_m(self, from_ms: int, to_ms: int) -> float:
        """Return the sum of ``distance_m`` of all records with from_ms <= ts_ms < to_ms,
        in metres.

        Summing records, not trips, counts the distance of trips still open and splits
        a trip that crosses a range boundary exactly.
        """
        found = await self._read(
            "SELECT TOTAL(distance_m) FROM records WHERE ts_ms >= ? AND ts_ms < ?",
            (from_ms, to_ms),
            "distance query",
        )
        return float(found[0][0])

    async def dead_letters(self, limit: int, after_id: int = 0) -> list[StoredDeadLetter]:
        """Return at most ``limit`` dead letters with id > after_id.

        With ``after_id`` 0 they are the newest, newest first. With ``after_id`` > 0
        they are the oldest after it, oldest first, so a client that resumes from the
        last id it read misses none. Raises ValueError for a negative ``limit`` or
        ``after_id``.
        """
        _check_limit(limit)
        _check_after_id(after_id)
        found = await self._read(
            f"SELECT {rows.DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id > ?"
            f" ORDER BY id {_id_order(after_id)} LIMIT ?",
            (after_id, limit),
            "dead letters query",
        )
        return [StoredDeadLetter(*rows.stored_dead_letter(row)) for row in found]

    async def counts(self) -> StoreCounts:
        """Return the number of stored rows of each kind, read from one snapshot."""
        found = await self._read(
            "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM events),"
            " (SELECT COUNT(*) FROM trips), (SELECT COUNT(*) FROM vehicles),"
            " (SELECT COUNT(*) FROM dead_letters)",
            (),
            "counts query",
        )
        return StoreCounts(*found[0])

    # --- reports ------------------------------------------------------------------

    async def fleet_activity(self, from_ms: int, to_ms: int) -> list[VehicleActivity]:
        """Return the activity of every known vehicle summed over [from_ms, to_ms),
        ordered by device id. Raises ValueError unless both are whole UTC hours."""
        _check_hours(from_ms, to_ms)
        found = await self._read(
            activity.FLEET_SUMS, (from_ms, from_ms, to_ms), "fleet activity query"
        )
        return [activity.activity(row) for row in found]

    async def vehicle_activity(
        self, device_id: str, from_ms: int, to_ms: int
    ) -> list[VehicleActivity]:
        """Return a vehicle's activity per UTC hour in [from_ms, to_ms), oldest first.
        Raises ValueError unless both are whole UTC hours."""
        _check_hours(from_ms, to_ms)
        found = await self._read(
            activity.VEHICLE_HOURS, (device_id, from_ms, to_ms), "vehicle activity query"
        )
        return [activity.activity(row) for row in found]

    # --- helpers ------------------------------------------------------------------

    async def _read(self, sql: str, params: tuple[Any, ...], action: str) -> list[Any]:
        if self._readers is None or self._closed:
            raise StoreError(f"{action} failed: store {self._path} is not open")
        return await self._readers.run(partial(_fetch_all, sql, params), action)

    def _require_writer(self, action: str) -> SqliteWriter:
        if self._writer is None or self._closed:
            raise StoreError(f"{action} failed: store {self._path} is not open")
        return self._writer


def _check_limit(limit: int) -> None:
    # SQLite reads a negative LIMIT as "no limit", which would return the whole table.
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")


def _check_after_id(after_id: int) -> None:
    if after_id < 0:
        raise ValueError(f"after_id must be 0 or more, not {after_id}")


def _check_hours(from_ms: int, to_ms: int) -> None:
    for name, value in (("from_ms", from_ms), ("to_ms", to_ms)):
        if value % ACTIVITY_HOUR_MS:
            raise ValueError(
                f"{name}={value} is not the start of a UTC hour; "
                f"give a multiple of {ACTIVITY_HOUR_MS}"
            )


def _id_order(after_id: int) -> str:
    # A first page shows the newest rows. A page after a known id must continue right
    # after it, because newest first would skip every row between that id and the
    # newest ``limit`` ones.
    return "ASC" if after_id > 0 else "DESC"


def _fetch_all(sql: str, params: tuple[Any, ...], connection: sqlite3.Connection) -> list[Any]:
    return connection.execute(sql, params).fetchall()


def _write_batch(batch: ProcessedBatch, connection: sqlite3.Connection) -> None:
    # Multi-row statements for the tables that take a row per record or per vehicle, see
    # _sqlite_bulk for why. Events stay on executemany because a batch has few of them.
    if batch.records:
        record_rows = map(rows.record_row, batch.records, repeat(rows.INTEGER_BOOLEANS))
        insert_rows(connection, rows.RECORD_INSERT, record_rows)
    if batch.events:
        connection.executemany(rows.UPSERT_EVENT, map(rows.event_row, batch.events))
    if batch.trips:
        insert_rows(connection, rows.TRIP_UPSERT, map(rows.trip_row, batch.trips))
    if batch.vehicles:
        insert_rows(connection, rows.VEHICLE_UPSERT, map(rows.vehicle_row, batch.vehicles))
    if batch.trips or batch.events:
        activity.refresh(connection, activity.touched_keys(batch.trips, batch.events))
    log.debug(
        "wrote records=%d events=%d trips=%d vehicles=%d",
        len(batch.records),
        len(batch.events),
        len(batch.trips),
        len(batch.vehicles),
    )


def _write_dead_letters(letters: Sequence[DeadLetter], connection: sqlite3.Connection) -> None:
    connection.executemany(rows.INSERT_DEAD_LETTER, map(rows.dead_letter_row, letters))


def _delete(statement: str, params: tuple[Any, ...], connection: sqlite3.Connection) -> int:
    return connection.execute(statement, params).rowcount
