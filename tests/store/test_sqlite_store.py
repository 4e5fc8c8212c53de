"""Behaviour specific to the SQLite store: query plans, a full disk, schema versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fleetpulse.errors import StoreError
from fleetpulse.model.event import Trip
from fleetpulse.store import _sqlite_rows, sqlite
from fleetpulse.store._sqlite_schema import SCHEMA_VERSION
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.sqlite import STORE_FILE, SqliteStore
from tests.store.store_helpers import make_enriched, make_event, make_settings

END_MS = 10**15


async def open_store(data_dir: Path) -> SqliteStore:
    store = SqliteStore(make_settings("sqlite", data_dir))
    await store.start()
    return store


def query_plan(path: Path, sql: str, params: tuple[object, ...]) -> str:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    connection.close()
    return "\n".join(row[-1] for row in rows)


async def test_positions_plan_uses_index(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.close()

    plan = query_plan(tmp_path / STORE_FILE, _sqlite_rows.POSITIONS, ("v1", 0, END_MS, 100))

    assert (
        "SEARCH records USING INDEX records_device_ts (device_id=? AND ts_ms>? AND ts_ms<?)" in plan
    )
    assert "SCAN" not in plan
    assert "TEMP B-TREE" not in plan


async def test_distance_plan_uses_covering_index(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.close()
    sql = "SELECT TOTAL(distance_m) FROM records WHERE ts_ms >= ? AND ts_ms < ?"

    plan = query_plan(tmp_path / STORE_FILE, sql, (0, END_MS))

    assert "USING COVERING INDEX records_ts" in plan


def test_trip_columns_match_struct() -> None:
    columns = tuple(name.strip() for name in _sqlite_rows.TRIP_COLUMNS.split(","))

    assert columns == Trip.__struct_fields__


async def test_full_disk_raises(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        writer = store._writer
        assert writer is not None
        # A page limit at the current size makes SQLite fail as on a full disk.
        pages = await writer.submit(
            lambda c: c.execute("PRAGMA page_count").fetchone()[0], "test setup"
        )
        await writer.submit(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"), "test setup")
        batch = ProcessedBatch(records=[make_enriched("v1", ts) for ts in range(2_000)])

        with pytest.raises(StoreError, match="database or disk is full") as caught:
            await store.write(batch)

        assert isinstance(caught.value.__cause__, sqlite3.Error)
        assert (await store.counts()).records == 0
    finally:
        await store.close()


async def test_newer_schema_rejected(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / STORE_FILE) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    store = SqliteStore(make_settings("sqlite", tmp_path))

    with pytest.raises(StoreError, match="upgrade fleetpulse"):
        await store.start()
    await store.close()


async def test_schema_version_set(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.close()

    with sqlite3.connect(tmp_path / STORE_FILE) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()

    assert version == SCHEMA_VERSION


async def test_purge_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite, "PURGE_CHUNK_ROWS", 3)
    store = await open_store(tmp_path)
    try:
        records = [make_enriched("v1", ts) for ts in range(20)]
        events = [make_event("v1", ts) for ts in range(20)]
        await store.write(ProcessedBatch(records=records, events=events))

        deleted = await store.purge(older_than_ms=10)

        counts = await store.counts()
        assert deleted == 20
        assert counts.records == 10
        assert counts.events == 10
    finally:
        await store.close()


async def test_event_ids_survive_purge(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        await store.write(ProcessedBatch(events=[make_event("v1", 1)]))
        before = await store.events(None, None, 0, END_MS, 10)
        await store.purge(older_than_ms=END_MS)

        await store.write(ProcessedBatch(events=[make_event("v1", 2)]))
        after = await store.events(None, None, 0, END_MS, 10)
    finally:
        await store.close()

    assert after[0].id > before[0].id


async def test_query_after_close_raises(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.close()

    with pytest.raises(StoreError):
        await store.counts()
