"""Multi-row inserts of the embedded store (``store/_sqlite_bulk.py``) on real SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from fleetpulse.store._sqlite_bulk import MAX_ROWS_PER_STATEMENT, BulkInsert, insert_rows

PLAIN = BulkInsert("INSERT OR IGNORE INTO t (k, v)", 2)
UPSERT = BulkInsert("INSERT INTO t (k, v)", 2, "\nON CONFLICT (k) DO UPDATE SET v = excluded.v")


@pytest.fixture
def connection() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    yield connection
    connection.close()


class CountingConnection:
    """Wraps a connection and counts the statements executed through it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.row_counts: list[int] = []

    def getlimit(self, category: int) -> int:
        return self.connection.getlimit(category)

    def execute(self, sql: str, parameters: list[object]) -> sqlite3.Cursor:
        self.row_counts.append(sql.count("(?, ?)"))
        return self.connection.execute(sql, parameters)


def stored(connection: sqlite3.Connection) -> list[tuple[int, str]]:
    return connection.execute("SELECT k, v FROM t ORDER BY k").fetchall()


def test_bulk_text_has_one_group_per_row() -> None:
    assert PLAIN.single == "INSERT OR IGNORE INTO t (k, v) VALUES (?, ?)"
    assert PLAIN.text(3) == "INSERT OR IGNORE INTO t (k, v) VALUES (?, ?), (?, ?), (?, ?)"
    assert UPSERT.text(2).endswith("(?, ?), (?, ?)\nON CONFLICT (k) DO UPDATE SET v = excluded.v")


def test_bulk_inserts_every_row(connection: sqlite3.Connection) -> None:
    rows = [(k, f"v{k}") for k in range(MAX_ROWS_PER_STATEMENT * 2 + 13)]
    insert_rows(connection, PLAIN, iter(rows))
    assert stored(connection) == rows


def test_bulk_statements_power_of_two(connection: sqlite3.Connection) -> None:
    counting = CountingConnection(connection)
    rows = [(k, "v") for k in range(MAX_ROWS_PER_STATEMENT + 13)]
    insert_rows(counting, PLAIN, rows)  # type: ignore[arg-type]
    assert counting.row_counts == [MAX_ROWS_PER_STATEMENT, 8, 4, 1]
    assert len(stored(connection)) == len(rows)


def test_bulk_respects_variable_limit(connection: sqlite3.Connection) -> None:
    # 9 variables allow 4 rows of 2 columns, and statements use powers of two.
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)
    counting = CountingConnection(connection)
    rows = [(k, "v") for k in range(11)]
    insert_rows(counting, PLAIN, rows)  # type: ignore[arg-type]
    assert counting.row_counts == [4, 4, 2, 1]
    assert len(stored(connection)) == len(rows)


def test_bulk_ignore_keeps_first_copy(connection: sqlite3.Connection) -> None:
    insert_rows(connection, PLAIN, [(1, "first"), (2, "other"), (1, "second")])
    assert stored(connection) == [(1, "first"), (2, "other")]


def test_bulk_upsert_keeps_last_copy(connection: sqlite3.Connection) -> None:
    # Rows of one statement meet each other's conflicts in order, as with executemany.
    insert_rows(connection, UPSERT, [(1, "first"), (2, "other"), (1, "second")])
    assert stored(connection) == [(1, "second"), (2, "other")]


def test_bulk_no_rows_executes_nothing(connection: sqlite3.Connection) -> None:
    counting = CountingConnection(connection)
    insert_rows(counting, PLAIN, [])  # type: ignore[arg-type]
    assert counting.row_counts == []
