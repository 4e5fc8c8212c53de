"""The PostgreSQL store: one database that several fleetpulse processes share.

A pool of asyncpg connections serves writes and queries. Each ProcessedBatch is one
transaction: its records go through COPY into a session's temporary table and from
there into ``records`` with ON CONFLICT DO NOTHING, and events, trips, vehicles and the
hourly activity follow the same rules as the SQLite store (see ``store.base``).
``records`` is partitioned by range of ``ts_ms`` (``_pg_partitions``), and the schema
comes from versioned migrations (``_pg_schema``) that ``fleetpulse db upgrade`` applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from fleetpulse.errors import StoreError
from fleetpulse.model.event import Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.store import _pg_partitions as partitions
from fleetpulse.store import _pg_schema as schema
from fleetpulse.store import _pg_sql as sql
from fleetpulse.store import _sqlite_activity as activity
from fleetpulse.store import _sqlite_rows as rows
from fleetpulse.store._pg_connect import (
    DATABASE_ERRORS,
    connect,
    connect_options,
    describe_dsn,
    translate_error,
)
from fleetpulse.store.base import (
    ACTIVITY_HOUR_MS,
    ProcessedBatch,
    Store,
    StoreCounts,
    StoredDeadLetter,
    StoredEvent,
    VehicleActivity,
    VehicleSnapshot,
)

if TYPE_CHECKING:
    from fleetpulse.config import Settings

log = logging.getLogger(__name__)

# Retention deletes this many rows per transaction, so the batches of the processor
# commit between chunks instead of waiting for one long delete.
PURGE_CHUNK_ROWS = 10_000
# SQLSTATE 23514 with this text: a partition dropped by retention in another process
# while this one still listed it.
_NO_PARTITION = "no partition of relation"

# The health check's bound on getting a connection and running SELECT 1, in seconds.
# Short, because /healthz waits for it and a load balancer times out its probe.
CHECK_TIMEOUT_S = 2.0


class PostgresStore(Store):
    """The shared store (``[store] backend = "postgres"``).

    Several processes may open it at once: partition DDL, migrations and id assignment
    run under advisory locks. A lost connection fails the call with StoreError, which
    the processor retries, and the pool replaces the connection.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.postgres
        self._target = describe_dsn(settings.postgres.dsn)
        self._width_ms = settings.postgres.partition_days * partitions.DAY_MS
        self._ahead = settings.postgres.partitions_ahead
        self._pool: asyncpg.Pool | None = None
        self._partitions = partitions.PartitionMap()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        _check_settings(settings)

    async def start(self) -> None:
        """Check the schema version (or upgrade it, with ``auto_upgrade``) and open the pool.

        Raises SchemaVersionError when the schema is older than this release needs and
        ``auto_upgrade`` is false, or newer than this release reads.
        """
        connection = await connect(self._settings, "store open")
        try:
            version = await self._checked_version(connection)
        finally:
            await connection.close()

        settings = self._settings
        try:
            self._pool = await asyncpg.create_pool(
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                init=_init_connection,
                **connect_options(settings),
            )
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "store open", self._target) from exc
        try:
            await self._ensure_partitions([_now_ms()])
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise
        log.info(
            "store opened backend=postgres target=%s schema_version=%d pool=%d..%d partitions=%d",
            self._target,
            version,
            settings.pool_min_size,
            settings.pool_max_size,
            len(self._partitions),
        )

    async def _checked_version(self, connection: asyncpg.Connection) -> int:
        try:
            version = await schema.current_version(connection)
            schema.check_not_newer(version, self._target)
            needed = schema.latest_version()
            if version < needed:
                if not self._settings.auto_upgrade:
                    raise schema.SchemaVersionError(
                        f"postgres {self._target} has schema version {version}, and this "
                        f"release needs {needed}: run `fleetpulse db upgrade`, or set "
                        "[postgres] auto_upgrade = true"
                    )
                log.info(
                    "schema upgrade starting target=%s from=%d to=%d",
                    self._target,
                    version,
                    needed,
                )
                await schema.upgrade(connection, self._target)
                version = await schema.current_version(connection)
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "store open", self._target) from exc
        return version

    async def close(self) -> None:
        """Wait for the calls in progress, then close the pool. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._idle.wait()
        if self._pool is not None:
            await self._pool.close()
        log.info("store closed backend=postgres target=%s", self._target)

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
        record_rows = _unique_record_rows(batch.records)
        async with self._connection("store write") as connection:
            if record_rows:
                await self._ensure_partitions([row[1] for row in record_rows], connection)
            try:
                await _write_batch(connection, batch, record_rows)
            except asyncpg.CheckViolationError as exc:
                if _NO_PARTITION not in str(exc):
                    raise
                # Another process dropped a partition this one still listed. Reload the
                # list, create what is missing and write once more.
                log.warning(
                    "store write found no partition target=%s, reloading partitions: %s",
                    self._target,
                    exc,
                )
                self._partitions = partitions.PartitionMap()
                await self._ensure_partitions([row[1] for row in record_rows], connection)
                await _write_batch(connection, batch, record_rows)

    async def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Append dead letters in one transaction."""
        if not letters:
            return
        async with self._connection("dead letter write") as connection:
            async with connection.transaction():
                await connection.execute(
                    "SELECT pg_advisory_xact_lock($1)", sql.DEAD_LETTER_ID_LOCK_KEY
                )
                await connection.executemany(
                    sql.INSERT_DEAD_LETTER, [rows.dead_letter_row(letter) for letter in letters]
                )

    async def load_states(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        """Return the saved processing state of each listed vehicle that has one."""
        if not device_ids:
            return {}
        found = await self._fetch(
            "SELECT device_id, state FROM vehicles WHERE device_id = ANY($1::text[])",
            (list(device_ids),),
            "state load",
        )
        return {row[0]: bytes(row[1]) for row in found}

    async def purge(self, older_than_ms: int) -> int:
        """Delete records, events and dead letters older than ``older_than_ms``, trips
        that ended (or, while open, started) before it, and the activity of hours that
        ended before it. Return the rows deleted.

        Partitions of records wholly older than the cutoff are dropped. Other deletes
        run in chunks of PURGE_CHUNK_ROWS rows, each its own transaction. Vehicles are
        kept.
        """
        deleted = 0
        async with self._connection("purge") as connection:
            deleted += await partitions.drop_older(connection, older_than_ms)
            self._partitions = await partitions.load(connection)
            statements = [
                sql.PURGE_PARTITION_CHUNK.format(partition=name)
                for name in await partitions.straddling(connection, older_than_ms)
            ]
            statements += [sql.PURGE_EVENTS, sql.PURGE_DEAD_LETTERS]
            for statement in statements:
                while True:
                    chunk = _affected(
                        await connection.execute(statement, older_than_ms, PURGE_CHUNK_ROWS)
                    )
                    deleted += chunk
                    if chunk < PURGE_CHUNK_ROWS:
                        break
            deleted += _affected(await connection.execute(sql.PURGE_TRIPS, older_than_ms))
            deleted += _affected(await connection.execute(sql.PURGE_HOURS, older_than_ms))
        log.info("purged rows=%d older_than_ms=%d target=%s", deleted, older_than_ms, self._target)
        return deleted

    # --- queries ------------------------------------------------------------------

    async def vehicles(self) -> list[VehicleView]:
        """Return the latest view of every vehicle, ordered by device id."""
        found = await self._fetch(
            "SELECT view FROM vehicles ORDER BY device_id", (), "vehicles query"
        )
        return [rows.vehicle_view(row[0]) for row in found]

    async def vehicle(self, device_id: str) -> VehicleView | None:
        """Return one vehicle's latest view, or None if it never sent a record."""
        found = await self._fetch(
            "SELECT view FROM vehicles WHERE device_id = $1", (device_id,), "vehicle query"
        )
        return rows.vehicle_view(found[0][0]) if found else None

    async def positions(
        self, device_id: str, from_ms: int, to_ms: int, limit: int
    ) -> list[EnrichedRecord]:
        """Return at most ``limit`` records of a vehicle with from_ms <= ts_ms < to_ms,
        oldest first."""
        _check_limit(limit)
        found = await self._fetch(
            sql.POSITIONS, (device_id, from_ms, to_ms, limit), "positions query"
        )
        return [rows.enriched_record(tuple(row)) for row in found]

    async def trips(self, device_id: str, from_ms: int, to_ms: int) -> list[Trip]:
        """Return the trips of a vehicle that started in [from_ms, to_ms), oldest first."""
        found = await self._fetch(sql.TRIPS, (device_id, from_ms, to_ms), "trips query")
        return [rows.trip(tuple(row)) for row in found]

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
        last id it read misses none. ``device_id`` and ``event_type`` filter when given.
        Raises ValueError for a negative ``limit`` or ``after_id``.
        """
        _check_limit(limit)
        _check_after_id(after_id)
        query, params = events_query(device_id, event_type, from_ms, to_ms, limit, after_id)
        found = await self._fetch(query, params, "events query")
        return [StoredEvent(*rows.stored_event(tuple(row))) for row in found]

    async def event_counts(self, from_ms: int, to_ms: int) -> dict[str, int]:
        """Return the number of events per type in [from_ms, to_ms)."""
        found = await self._fetch(sql.EVENT_COUNTS, (from_ms, to_ms), "event counts query")
        return {row[0]: row[1] for row in found}

    async def alert_leaders(self, from_ms: int, to_ms: int, limit: int) -> list[tuple[str, int]]:
        """Return (device_id, alerts) for the vehicles with the most warning or critical
        events in [from_ms, to_ms), most first, with ties in device id order."""
        _check_limit(limit)
        found = await self._fetch(sql.ALERT_LEADERS, (from_ms, to_ms, limit), "alert leaders query")
        return [(row[0], row[1]) for row in found]

    async def distance_m(self, from_ms: int, to_ms: int) -> float:
        """Return the sum of ``distance_m`` of all records with from_ms <= ts_ms < to_ms,
        in metres."""
        found = await self._fetch(sql.DISTANCE, (from_ms, to_ms), "distance query")
        return float(found[0][0])

    async def dead_letters(self, limit: int, after_id: int = 0) -> list[StoredDeadLetter]:
        """Return at most ``limit`` dead letters with id > after_id.

        With ``after_id`` 0 they are the newest, newest first. With ``after_id`` > 0
        they are the oldest after it, oldest first. Raises ValueError for a negative
        ``limit`` or ``after_id``.
        """
        _check_limit(limit)
        _check_after_id(after_id)
        found = await self._fetch(
            dead_letters_query(after_id), (after_id, limit), "dead letters query"
        )
        return [StoredDeadLetter(*rows.stored_dead_letter(tuple(row))) for row in found]

    async def counts(self) -> StoreCounts:
        """Return the number of stored rows of each kind, read from one snapshot."""
        found = await self._fetch(sql.COUNTS, (), "counts query")
        return StoreCounts(*found[0])

    # --- reports ------------------------------------------------------------------

    async def fleet_activity(self, from_ms: int, to_ms: int) -> list[VehicleActivity]:
        """Return the activity of every known vehicle summed over [from_ms, to_ms),
        ordered by device id. Raises ValueError unless both are whole UTC hours."""
        _check_hours(from_ms, to_ms)
        found = await self._fetch(sql.FLEET_SUMS, (from_ms, from_ms, to_ms), "fleet activity query")
        return [activity.activity(tuple(row)) for row in found]

    async def vehicle_activity(
        self, device_id: str, from_ms: int, to_ms: int
    ) -> list[VehicleActivity]:
        """Return a vehicle's activity per UTC hour in [from_ms, to_ms), oldest first.
        Raises ValueError unless both are whole UTC hours."""
        _check_hours(from_ms, to_ms)
        found = await self._fetch(
            sql.VEHICLE_HOURS, (device_id, from_ms, to_ms), "vehicle activity query"
        )
        return [activity.activity(tuple(row)) for row in found]

    async def check(self) -> str | None:
        """Run ``SELECT 1`` on a pooled connection, giving up after CHECK_TIMEOUT_S."""
        if self._pool is None or self._closed:
            return f"postgres store {self._target} is not open"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                async with self._pool.acquire() as connection:
                    await connection.fetchval("SELECT 1")
        except DATABASE_ERRORS as exc:
            return (
                f"store unreachable: postgres {self._target} failed a check within "
                f"{CHECK_TIMEOUT_S:g} s ({str(exc) or type(exc).__name__}); check that the "
                "server is running and [postgres] dsn"
            )
        return None

    # --- helpers ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self, action: str) -> AsyncIterator[asyncpg.Connection]:
        """Lend a pooled connection, counted as a call in progress, and translate errors.

        close() waits for the calls in progress, so a write that started before it
        commits.
        """
        if self._pool is None or self._closed:
            raise StoreError(f"{action} failed: postgres store {self._target} is not open")
        self._in_flight += 1
        self._idle.clear()
        try:
            async with self._pool.acquire() as connection:
                yield connection
        except DATABASE_ERRORS as exc:
            log.warning("%s failed target=%s: %s", action, self._target, exc)
            raise translate_error(exc, action, self._target) from exc
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _fetch(self, query: str, params: tuple[Any, ...], action: str) -> list[Any]:
        async with self._connection(action) as connection:
            found: list[Any] = await connection.fetch(query, *params)
        return found

    async def _ensure_partitions(
        self, ts_values: list[int], connection: asyncpg.Connection | None = None
    ) -> None:
        """Create the records partitions that ``ts_values`` need and this process does not
        know of yet, reloading the list from the database first."""
        if not self._partitions.uncovered(ts_values) and len(self._partitions):
            return
        if connection is None:
            async with self._connection("partition check") as pooled:
                await self._ensure_partitions_on(pooled, ts_values)
        else:
            await self._ensure_partitions_on(connection, ts_values)

    async def _ensure_partitions_on(
        self, connection: asyncpg.Connection, ts_values: list[int]
    ) -> None:
        known = await partitions.load(connection)
        if known.uncovered(ts_values):
            known, _ = await partitions.create_covering(
                connection, ts_values, self._width_ms, self._ahead
            )
        self._partitions = known


async def _init_connection(connection: asyncpg.Connection) -> None:
    # Runs once per new pooled connection. The temporary table lives as long as the
    # session, and the pool's reset between users keeps it.
    await connection.execute(sql.CREATE_STAGING)


async def _write_batch(
    connection: asyncpg.Connection, batch: ProcessedBatch, record_rows: list[tuple[Any, ...]]
) -> None:
    async with connection.transaction():
        if record_rows:
            await connection.copy_records_to_table(
                sql.STAGING_TABLE, records=record_rows, columns=sql.RECORD_COLUMN_NAMES
            )
            await connection.execute(sql.INSERT_FROM_STAGING)
        if batch.events:
            await connection.execute("SELECT pg_advisory_xact_lock($1)", sql.EVENT_ID_LOCK_KEY)
            await connection.executemany(
                sql.UPSERT_EVENT, [rows.event_row(event) for event in batch.events]
            )
        if batch.trips:
            # Sorted by key, and stable, so copies of one trip keep their order. Writers
            # that share vehicles then lock trip rows in the same order, which makes a
            # deadlock unlikely. PostgreSQL aborts one that still happens, and the
            # StoreError it raises is retriable.
            trips = sorted(batch.trips, key=lambda trip: (trip.device_id, trip.start_ts_ms))
            await connection.executemany(sql.UPSERT_TRIP, [rows.trip_row(trip) for trip in trips])
        if batch.vehicles:
            vehicle_rows = [rows.vehicle_row(snapshot) for snapshot in _latest(batch.vehicles)]
            await connection.execute(
                sql.UPSERT_VEHICLES,
                *(list(column) for column in zip(*vehicle_rows, strict=True)),
            )
        if batch.trips or batch.events:
            keys = activity.touched_keys(batch.trips, batch.events)
            if keys:
                await connection.execute(
                    sql.REFRESH_HOURS, [key[0] for key in keys], [key[1] for key in keys]
                )
    log.debug(
        "wrote records=%d events=%d trips=%d vehicles=%d",
        len(record_rows),
        len(batch.events),
        len(batch.trips),
        len(batch.vehicles),
    )


def _unique_record_rows(records: Sequence[EnrichedRecord]) -> list[tuple[Any, ...]]:
    """Return the rows of the records, keeping the first of each (device_id, ts_ms)."""
    unique: dict[tuple[str, int], tuple[Any, ...]] = {}
    for enriched in records:
        key = (enriched.record.device_id, enriched.record.ts_ms)
        if key not in unique:
            unique[key] = rows.record_row(enriched)
    return list(unique.values())


def _latest(snapshots: Sequence[VehicleSnapshot]) -> list[VehicleSnapshot]:
    """Return the snapshot per vehicle that writing them one by one would leave stored,
    ordered by device id.

    That is the last of those with the newest ``last_ts_ms``, because a snapshot replaces
    one with an older or equal ``last_ts_ms``. The order by device id makes writers that
    share vehicles lock their rows in the same order.
    """
    latest: dict[str, VehicleSnapshot] = {}
    for snapshot in snapshots:
        device_id = snapshot.view.device_id
        kept = latest.get(device_id)
        if kept is None or snapshot.view.last_ts_ms >= kept.view.last_ts_ms:
            latest[device_id] = snapshot
    return [latest[device_id] for device_id in sorted(latest)]


def _affected(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 42".
    return int(status.rsplit(" ", 1)[-1])


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_settings(settings: Settings) -> None:
    postgres = settings.postgres
    if postgres.partition_days < 1:
        raise StoreError(
            f"[postgres] partition_days = {postgres.partition_days} is invalid: use 1 or more"
        )
    if postgres.partitions_ahead < 0:
        raise StoreError(
            f"[postgres] partitions_ahead = {postgres.partitions_ahead} is invalid: use 0 or more"
        )
    if not 1 <= postgres.pool_min_size <= postgres.pool_max_size:
        raise StoreError(
            f"[postgres] pool_min_size = {postgres.pool_min_size} and pool_max_size = "
            f"{postgres.pool_max_size} are invalid: use 1 <= pool_min_size <= pool_max_size"
        )


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")


def _check_after_id(after_id: int) -> None:
    if after_id < 0:
        raise ValueError(f"after_id must be 0 or more, not {after_id}")


def _check_hours(from_ms: int, to_ms: int) -> None:
    for name, value in (("from_ms", from_ms), ("to_ms", to_ms)):
        if value % ACTIVITY_HOUR_MS:
            raise ValueError(
                f"{name}={value} is not the start of a UTC hour: "
                f"give a multiple of {ACTIVITY_HOUR_MS}"
            )


def events_query(
    device_id: str | None,
    event_type: str | None,
    from_ms: int,
    to_ms: int,
    limit: int,
    after_id: int,
) -> tuple[str, tuple[Any, ...]]:
    """Build the SQL and parameters of ``events()``. ``device_id`` and ``event_type``
    filter when given."""
    clauses = ["ts_ms >= $1", "ts_ms < $2", "id > $3"]
    params: list[Any] = [from_ms, to_ms, after_id]
    if device_id is not None:
        params.append(device_id)
        clauses.append(f"device_id = ${len(params)}")
    if event_type is not None:
        params.append(event_type)
        clauses.append(f"type = ${len(params)}")
    params.append(limit)
    query = (
        f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
        f" ORDER BY id {_id_order(after_id)} LIMIT ${len(params)}"
    )
    return query, tuple(params)


def dead_letters_query(after_id: int) -> str:
    """Build the SQL of ``dead_letters()``, which takes after_id and limit."""
    return (
        f"SELECT {rows.DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id > $1"
        f" ORDER BY id {_id_order(after_id)} LIMIT $2"
    )


def _id_order(after_id: int) -> str:
    # A first page shows the newest rows. A page after a known id continues right after
    # it, because newest first would skip every row between that id and the newest.
    return "ASC" if after_id > 0 else "DESC"
