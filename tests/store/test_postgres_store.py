"""What only the PostgreSQL store has: partitions, migrations, `fleetpulse db`, index use.

The behaviour it shares with the SQLite store is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from fleetpulse.cli.main import main
from fleetpulse.config import PostgresSettings, Settings, StoreSettings
from fleetpulse.errors import StoreError
from fleetpulse.store import _pg_schema as schema
from fleetpulse.store import _pg_sql as sql
from fleetpulse.store._pg_connect import describe_dsn
from fleetpulse.store._pg_partitions import DAY_MS, Partition, PartitionMap, partition_name
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.postgres import PostgresStore, dead_letters_query, events_query
from tests.postgres_server import PostgresServer
from tests.store.store_helpers import make_enriched, make_event, make_snapshot

HOUR_MS = 3_600_000
# 2024-01-01 00:00 UTC: the start of a 1-day partition. 7-day partitions align to the
# epoch, a Thursday, so the one that contains this day starts on 2023-12-28.
JAN_1_2024_MS = 1_704_067_200_000
WEEK_MS = 7 * DAY_MS


def postgres_settings(dsn: str, **fields: Any) -> Settings:
    fields.setdefault("auto_upgrade", True)
    return Settings(
        store=StoreSettings(backend="postgres"), postgres=PostgresSettings(dsn=dsn, **fields)
    )


@pytest.fixture
async def open_pg(postgres_dsn: str) -> AsyncIterator[Any]:
    """A function that opens a PostgresStore on the test's database, closed afterwards."""
    opened: list[PostgresStore] = []

    async def open_(**fields: Any) -> PostgresStore:
        store = PostgresStore(postgres_settings(postgres_dsn, **fields))
        await store.start()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
def sync_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """DSN of a fresh schema, for tests that run the command line (no event loop)."""
    dsn = postgres_server.create_schema_sync()
    yield dsn
    postgres_server.drop_schema_sync(dsn)


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        found: list[asyncpg.Record] = await connection.fetch(query, *args)
        return found
    finally:
        await connection.close()


async def partition_rows(dsn: str) -> list[tuple[str, int, int]]:
    """Return (name, from_ms, to_ms) of every partition attached to records."""
    found = await fetch(
        dsn,
        "SELECT c.relname, p.from_ms, p.to_ms FROM pg_inherits AS i"
        " JOIN pg_class AS c ON c.oid = i.inhrelid"
        " JOIN record_partitions AS p ON p.name = c.relname"
        " WHERE i.inhparent = 'records'::regclass ORDER BY p.from_ms",
    )
    return [(row[0], row[1], row[2]) for row in found]


# --- partitions -----------------------------------------------------------------


def test_partition_name_by_date() -> None:
    assert partition_name(JAN_1_2024_MS) == "records_20240101"
    assert partition_name(0) == "records_19700101"
    assert partition_name(JAN_1_2024_MS + HOUR_MS) == f"records_ms_{JAN_1_2024_MS + HOUR_MS}"


def test_partition_range_clipped() -> None:
    # An existing partition that is not aligned to the width of the new ones.
    week = Partition(JAN_1_2024_MS, JAN_1_2024_MS + WEEK_MS, "records_20240101")
    known = PartitionMap([week])

    before = known.range_for(JAN_1_2024_MS - 1, WEEK_MS)
    after = known.range_for(JAN_1_2024_MS + WEEK_MS, 30 * DAY_MS)

    assert before == (JAN_1_2024_MS - 4 * DAY_MS, JAN_1_2024_MS)
    assert after[0] == JAN_1_2024_MS + WEEK_MS
    assert after[1] == (JAN_1_2024_MS + WEEK_MS) // (30 * DAY_MS) * (30 * DAY_MS) + 30 * DAY_MS
    assert known.find(JAN_1_2024_MS + WEEK_MS - 1) == week
    assert known.find(JAN_1_2024_MS + WEEK_MS) is None
    assert known.find(JAN_1_2024_MS - 1) is None


async def test_write_creates_partitions_ahead(open_pg: Any, postgres_dsn: str) -> None:
    store = await open_pg(partition_days=1, partitions_ahead=2)
    ts = JAN_1_2024_MS + 5 * HOUR_MS

    await store.write(ProcessedBatch(records=[make_enriched("v1", ts)]))

    names = [name for name, _, _ in await partition_rows(postgres_dsn)]
    assert {"records_20240101", "records_20240102", "records_20240103"} <= set(names)
    assert "records_20240104" not in names
    assert len(await store.positions("v1", 0, ts + 1, 10)) == 1


async def test_start_creates_current_partition(open_pg: Any, postgres_dsn: str) -> None:
    await open_pg(partition_days=7, partitions_ahead=1)
    now_ms = int(time.time() * 1000)

    spans = [(from_ms, to_ms) for _, from_ms, to_ms in await partition_rows(postgres_dsn)]
    assert any(from_ms <= now_ms < to_ms for from_ms, to_ms in spans)
    assert any(from_ms <= now_ms + 7 * DAY_MS < to_ms for from_ms, to_ms in spans)


async def test_partition_width_change_clips(open_pg: Any, postgres_dsn: str) -> None:
    weekly = await open_pg(partition_days=7, partitions_ahead=0)
    await weekly.write(ProcessedBatch(records=[make_enriched("v1", JAN_1_2024_MS + DAY_MS)]))
    await weekly.close()

    # 30-day partitions aligned to the epoch overlap the weekly one on both sides.
    monthly = await open_pg(partition_days=30, partitions_ahead=0)
    await monthly.write(
        ProcessedBatch(
            records=[
                make_enriched("v1", JAN_1_2024_MS - DAY_MS),
                make_enriched("v1", JAN_1_2024_MS + 8 * DAY_MS),
            ]
        )
    )

    spans = sorted((f, t) for _, f, t in await partition_rows(postgres_dsn))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start
    assert (await monthly.counts()).records == 3


async def test_concurrent_writers_one_partition(open_pg: Any, postgres_dsn: str) -> None:
    first = await open_pg(partition_days=1, partitions_ahead=1)
    second = await open_pg(partition_days=1, partitions_ahead=1)
    ts = JAN_1_2024_MS + 40 * DAY_MS

    await asyncio.gather(
        *(
            store.write(ProcessedBatch(records=[make_enriched(f"{name}-{i}", ts + i)]))
            for name, store in (("a", first), ("b", second))
            for i in range(10)
        )
    )

    names = [name for name, _, _ in await partition_rows(postgres_dsn)]
    assert names.count(partition_name(ts - ts % DAY_MS)) == 1
    assert (await first.counts()).records == 20


async def test_purge_drops_whole_partitions(open_pg: Any, postgres_dsn: str) -> None:
    store = await open_pg(partition_days=1, partitions_ahead=0)
    days = [JAN_1_2024_MS + day * DAY_MS for day in range(3)]
    records = [make_enriched("v1", day + hour * HOUR_MS) for day in days for hour in range(24)]
    await store.write(ProcessedBatch(records=records))
    cutoff = days[2] + 6 * HOUR_MS

    deleted = await store.purge(cutoff)

    names = [name for name, _, _ in await partition_rows(postgres_dsn)]
    tables = await fetch(postgres_dsn, "SELECT to_regclass('records_20240101') IS NULL")
    remaining = await store.positions("v1", 0, days[2] + DAY_MS, 100)
    assert deleted == 24 + 24 + 6
    assert "records_20240101" not in names
    assert "records_20240102" not in names
    assert "records_20240103" in names
    assert tables[0][0] is True
    assert [e.record.ts_ms for e in remaining] == [days[2] + h * HOUR_MS for h in range(6, 24)]


async def test_write_after_other_purge(open_pg: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fleetpulse.store")
    writer = await open_pg(partition_days=1, partitions_ahead=0)
    purger = await open_pg(partition_days=1, partitions_ahead=0)
    await writer.write(ProcessedBatch(records=[make_enriched("v1", JAN_1_2024_MS)]))
    await purger.purge(JAN_1_2024_MS + DAY_MS)

    # The writer still lists the dropped partition, so its write must create it again.
    await writer.write(ProcessedBatch(records=[make_enriched("v1", JAN_1_2024_MS + 1)]))

    assert [e.record.ts_ms for e in await writer.positions("v1", 0, 2 * JAN_1_2024_MS, 10)] == [
        JAN_1_2024_MS + 1
    ]
    assert "store write found no partition" in caplog.text
    assert caplog.text.count("records partition created name=records_20240101") == 2


async def test_polling_misses_no_event(open_pg: Any) -> None:
    writers = [await open_pg(pool_min_size=2, pool_max_size=4) for _ in range(2)]
    reader = await open_pg(pool_min_size=1, pool_max_size=1)
    seen: list[int] = []
    done = asyncio.Event()

    async def write(number: int) -> None:
        store = writers[number % 2]
        events = [make_event(f"w{number}", ts) for ts in range(5)]
        await store.write(ProcessedBatch(events=events, records=[make_enriched("r", number)]))

    async def poll() -> None:
        # A live client: it pages after the last id it read, as the API's stream does.
        last_id = 0
        while True:
            finished = done.is_set()
            page = await reader.events(None, None, 0, 10**15, 1000, after_id=last_id or 0)
            if last_id == 0:
                page = sorted(page, key=lambda stored: stored.id)
            seen.extend(stored.id for stored in page)
            if page:
                last_id = page[-1].id
            if finished and not page:
                return
            await asyncio.sleep(0)

    poller = asyncio.create_task(poll())
    await asyncio.gather(*(write(number) for number in range(60)))
    done.set()
    await poller

    stored = [s.id for s in await reader.events(None, None, 0, 10**15, 1000)]
    assert len(stored) == 60 * 5
    assert sorted(seen) == sorted(stored)
    assert len(set(seen)) == len(seen)


# --- migrations -----------------------------------------------------------------


async def test_upgrade_idempotent(postgres_dsn: str) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        before = await schema.current_version(connection)
        first = await schema.upgrade(connection, "test")
        second = await schema.upgrade(connection, "test")
        applied = await schema.applied_migrations(connection)
    finally:
        await connection.close()

    assert before == 0
    assert [m.version for m in first] == list(range(1, schema.latest_version() + 1))
    assert second == []
    assert [row.version for row in applied] == [m.version for m in schema.migrations()]
    assert applied[0].name == "initial"


async def test_concurrent_upgrades_apply_once(postgres_dsn: str) -> None:
    connections = [await asyncpg.connect(postgres_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(schema.upgrade(connection, "test") for connection in connections)
        )
        rows = await connections[0].fetch("SELECT version FROM schema_version")
    finally:
        for connection in connections:
            await connection.close()

    assert sorted(len(applied) for applied in results) == [0, 0, schema.latest_version()]
    assert len(rows) == schema.latest_version()


async def test_old_schema_rejected(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_settings(postgres_dsn, auto_upgrade=False))

    with pytest.raises(schema.SchemaVersionError) as caught:
        await store.start()
    await store.close()

    message = str(caught.value)
    assert f"schema version 0, and this release needs {schema.latest_version()}" in message
    assert "fleetpulse db upgrade" in message
    assert caught.value.retriable is False


async def test_newer_schema_rejected(open_pg: Any, postgres_dsn: str) -> None:
    await open_pg()
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute("INSERT INTO schema_version (version, name) VALUES (999, 'x')")
    finally:
        await connection.close()

    with pytest.raises(schema.SchemaVersionError, match="upgrade fleetpulse"):
        await open_pg()


async def test_auto_upgrade_migrates(open_pg: Any, postgres_dsn: str) -> None:
    await open_pg(auto_upgrade=True)

    rows = await fetch(postgres_dsn, "SELECT max(version) FROM schema_version")
    assert rows[0][0] == schema.latest_version()


# --- the command line -----------------------------------------------------------


def test_db_upgrade_command(sync_dsn: str) -> None:
    env = {
        **os.environ,
        "FLEETPULSE_POSTGRES_DSN": sync_dsn,
        "FLEETPULSE_STORE_BACKEND": "postgres",
    }
    command = [sys.executable, "-m", "fleetpulse.cli.main", "db", "upgrade"]

    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert first.returncode == 0, first.stderr
    assert "schema version 0, this release needs" in first.stdout
    assert "applied 0001_initial" in first.stdout
    assert f"to {schema.latest_version()}" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout


def test_db_status_command(
    sync_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLEETPULSE_POSTGRES_DSN", sync_dsn)
    monkeypatch.setenv("FLEETPULSE_STORE_BACKEND", "postgres")

    pending = main(["db", "status"])
    pending_output = capsys.readouterr().out
    upgraded = main(["db", "upgrade"])
    capsys.readouterr()
    current = main(["db", "status"])
    current_output = capsys.readouterr().out

    assert pending == 3
    assert "pending  0001_initial" in pending_output
    assert upgraded == 0
    assert current == 0
    assert "applied  0001_initial" in current_output
    assert "the schema is current" in current_output


def test_db_unreachable_hides_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    monkeypatch.setenv("FLEETPULSE_POSTGRES_DSN", "postgresql://fp:s3cret@127.0.0.1:1/fleet")

    exit_code = main(["db", "upgrade"])

    captured = capsys.readouterr()
    assert exit_code == 1
    assert "127.0.0.1:1/fleet" in captured.err
    assert "s3cret" not in captured.err + captured.out


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "described"),
    [
        ("postgresql://fp:s3cret@db.example:6543/fleet", "db.example:6543/fleet"),
        ("postgresql://fp:s3cret@db.example/fleet?sslmode=require", "db.example:5432/fleet"),
        ("postgresql://fp:s3cret@h1:5432,h2:5433/fleet", "h1:5432,h2:5433/fleet"),
        ("postgres://fp:s3cret%40x@[::1]:5433/fleet", "::1:5433/fleet"),
    ],
)
def test_describe_dsn_hides_password(dsn: str, described: str) -> None:
    assert describe_dsn(dsn) == described


async def test_unreachable_server_store_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresStore(postgres_settings("postgresql://fp:s3cret@127.0.0.1:1/fleet"))

    with pytest.raises(StoreError, match="127.0.0.1:1/fleet") as caught:
        await store.start()

    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in caplog.text
    assert caught.value.retriable is True


async def test_lost_connection_store_error(open_pg: Any, postgres_dsn: str) -> None:
    store = await open_pg(pool_min_size=1, pool_max_size=1)
    await store.write(ProcessedBatch(vehicles=[make_snapshot("v1", 1)]))
    blocker = await asyncpg.connect(postgres_dsn)
    try:
        # The store's query waits for this lock, so its server process is terminated
        # in the middle of the query, as when the server restarts under load.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE vehicles IN ACCESS EXCLUSIVE MODE")
        query = asyncio.create_task(store.vehicles())
        waiting: list[int] = []
        for _ in range(200):
            waiting = [
                row[0]
                for row in await blocker.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'fleetpulse'"
                    " AND wait_event_type = 'Lock'"
                )
            ]
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the store's query never waited for the lock"
        await blocker.execute("SELECT pg_terminate_backend($1)", waiting[0])

        with pytest.raises(StoreError, match="vehicles query failed"):
            await query
        await transaction.rollback()
    finally:
        await blocker.close()

    # The pool replaces the lost connection, so the next call succeeds.
    assert [view.device_id for view in await store.vehicles()] == ["v1"]


def test_invalid_partition_days() -> None:
    with pytest.raises(StoreError, match="partition_days = 0 is invalid"):
        PostgresStore(postgres_settings("postgresql://fp@127.0.0.1/fleet", partition_days=0))


# --- index use ------------------------------------------------------------------

# The queries behind the API, as the store sends them, with representative arguments,
# and the indexes that may serve each. Partition indexes are named after their partition.
API_QUERIES: dict[str, tuple[str, tuple[Any, ...], tuple[str, ...]]] = {
    "positions": (sql.POSITIONS, ("v1", 0, 10, 100), ("records_19700101_pkey",)),
    "distance": (sql.DISTANCE, (0, 10), ("records_19700101_ts_ms_distance_m_idx",)),
    "trips": (sql.TRIPS, ("v1", 0, 10), ("trips_pkey",)),
    "event counts": (sql.EVENT_COUNTS, (0, 10), ("events_ts",)),
    "alert leaders": (sql.ALERT_LEADERS, (0, 10, 10), ("events_ts",)),
    "vehicle hours": (sql.VEHICLE_HOURS, ("v1", 0, HOUR_MS), ("vehicle_hours_pkey",)),
    "events newest": (*events_query(None, None, 0, 10, 100, 0), ("events_ts", "events_pkey")),
    "events after id": (*events_query(None, None, 0, 10, 100, 5), ("events_ts", "events_pkey")),
    "events by vehicle": (
        *events_query("v1", None, 0, 10, 100, 0),
        ("events_device_ts", "events_device_id_type_ts_ms_key"),
    ),
    "events by type": (*events_query(None, "overspeed", 0, 10, 100, 0), ("events_type_ts",)),
    "events by vehicle and type": (
        *events_query("v1", "overspeed", 0, 10, 100, 5),
        ("events_device_ts", "events_device_id_type_ts_ms_key"),
    ),
    "dead letters newest": (dead_letters_query(0), (0, 100), ("dead_letters_pkey",)),
    "dead letters after id": (dead_letters_query(5), (5, 100), ("dead_letters_pkey",)),
    "vehicle": ("SELECT view FROM vehicles WHERE device_id = $1", ("v1",), ("vehicles_pkey",)),
}


async def test_api_queries_use_indexes(open_pg: Any, postgres_dsn: str) -> None:
    store = await open_pg(partition_days=1)
    await store.write(
        ProcessedBatch(
            records=[make_enriched(f"v{i % 5}", i) for i in range(200)],
            events=[make_event(f"v{i % 5}", i) for i in range(50)],
            vehicles=[make_snapshot("v1", 1)],
        )
    )
    connection = await asyncpg.connect(postgres_dsn)
    plans: dict[str, str] = {}
    try:
        await connection.execute("ANALYZE")
        # Sequential scans priced out, as on a table too large to read whole.
        await connection.execute("SET enable_seqscan = off")
        for name, (query, params, _) in API_QUERIES.items():
            rows = await connection.fetch(f"EXPLAIN {query}", *params)
            plans[name] = "\n".join(row[0] for row in rows)
    finally:
        await connection.close()

    for name, plan in plans.items():
        indexes = API_QUERIES[name][2]
        assert "Seq Scan" not in plan, f"{name} query scans a table:\n{plan}"
        assert any(f" {index} " in plan for index in indexes), f"{name} plan:\n{plan}"
