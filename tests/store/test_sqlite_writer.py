"""The group-commit writer thread shared by the SQLite queue and store."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from pathlib import Path

import pytest

from fleetpulse.errors import StoreError
from fleetpulse.store._sqlite_connect import connect_writer
from fleetpulse.store._sqlite_writer import SqliteWriter


def make_writer(path: Path) -> SqliteWriter:
    writer = SqliteWriter(
        "test-writer", path, lambda: connect_writer(path, "normal", 1024), StoreError
    )
    writer.start()
    return writer


def insert(value: int, connection: sqlite3.Connection) -> int:
    connection.execute("INSERT INTO t (v) VALUES (?)", (value,))
    return value


def fail(connection: sqlite3.Connection) -> None:
    connection.execute("INSERT INTO t (v) VALUES (-1)")
    connection.execute("INSERT INTO missing_table VALUES (1)")


def stored(path: Path) -> list[int]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT v FROM t ORDER BY v").fetchall()
    connection.close()
    return [row[0] for row in rows]


async def test_failed_job_rolled_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = make_writer(path)
    await writer.submit(lambda c: c.execute("CREATE TABLE t (v INTEGER)"), "create")

    # Queued together, so they share one group transaction.
    first = writer.enqueue(partial(insert, 1), "insert")
    failing = writer.enqueue(fail, "fail")
    second = writer.enqueue(partial(insert, 2), "insert")
    outcomes = await asyncio.gather(first, failing, second, return_exceptions=True)
    await writer.close()

    assert outcomes[0] == 1
    assert isinstance(outcomes[1], StoreError)
    assert isinstance(outcomes[1].__cause__, sqlite3.OperationalError)
    assert outcomes[2] == 2
    assert stored(path) == [1, 2]


async def test_one_statement_job_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = make_writer(path)
    await writer.submit(lambda c: c.execute("CREATE TABLE t (v INTEGER CHECK (v >= 0))"), "create")

    # A multi-row INSERT whose last row breaks the CHECK: SQLite undoes the whole
    # statement without a savepoint, and the other jobs of the group still commit.
    def insert_two(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO t (v) VALUES (7), (-1)")

    first = writer.enqueue(partial(insert, 1), "insert", one_statement=True)
    failing = writer.enqueue(insert_two, "insert two", one_statement=True)
    second = writer.enqueue(partial(insert, 2), "insert")
    outcomes = await asyncio.gather(first, failing, second, return_exceptions=True)
    await writer.close()

    assert outcomes[0] == 1
    assert isinstance(outcomes[1], StoreError)
    assert isinstance(outcomes[1].__cause__, sqlite3.IntegrityError)
    assert outcomes[2] == 2
    assert stored(path) == [1, 2]


async def test_plain_exception_passes_through(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "w.db")

    def broken(connection: sqlite3.Connection) -> None:
        raise KeyError("device")

    with pytest.raises(KeyError):
        await writer.submit(broken, "broken")
    await writer.close()


async def test_close_commits_queued(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = make_writer(path)
    await writer.submit(lambda c: c.execute("CREATE TABLE t (v INTEGER)"), "create")
    futures = [writer.enqueue(partial(insert, value), "insert") for value in range(50)]

    await writer.close()

    assert await asyncio.gather(*futures) == list(range(50))
    assert stored(path) == list(range(50))


async def test_enqueue_after_close_raises(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "w.db")
    await writer.close()

    with pytest.raises(StoreError, match="closed"):
        await writer.submit(lambda c: None, "late")


async def test_open_failure_fails_callers(tmp_path: Path) -> None:
    # A directory cannot be opened as a database file.
    writer = make_writer(tmp_path)

    with pytest.raises(StoreError, match="stopped"):
        await writer.submit(lambda c: None, "first")
    await writer.close()
