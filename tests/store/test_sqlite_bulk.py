"""Multi-row inserts of the embedded store (``store/_sqlite_bulk.py``) on real SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from fleetpulse.store._sqlite_bulk import (
    MAX_NULL_SETS,
    MAX_ROWS_PER_STATEMENT,
    BulkInsert,
    insert_rows,
)

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
        self.texts: list[str] = []

    def getlimit(self, category: int) -> int:
        return self.connection.getlimit(category)

    def execute(self, sql: str, parameters: list[object]) -> sqlite3.Cursor:
        self.row_counts.append(sql.count("(?, ?)"))
        self.texts.append(sql)
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


NULLABLE = BulkInsert("INSERT INTO n (k, a, b)", 3, nullable=(1, 2))


@pytest.fixture
def nullable_table() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE n (k INTEGER PRIMARY KEY, a REAL, b TEXT)")
    yield connection
    connection.close()


def test_bulk_text_writes_null_literals() -> None:
    assert NULLABLE.text(2, (2,)) == "INSERT INTO n (k, a, b) VALUES (?, ?, NULL), (?, ?, NULL)"


def test_bulk_null_columns_need_every_row() -> None:
    statement = BulkInsert("INSERT INTO n (k, a, b)", 3, nullable=(1, 2))
    assert statement.null_columns([(1, None, None), (2, None, None)]) == (1, 2)
    assert statement.null_columns([(1, None, None), (2, 0.0, None)]) == (2,)
    assert statement.null_columns([(1, 0.0, "x"), (2, None, None)]) == ()
    assert statement.null_columns([]) == ()


def test_bulk_null_literals_store_null(nullable_table: sqlite3.Connection) -> None:
    # The first statement (1024 rows) has column b NULL in every row, the second
    # (2 rows) binds b because one row has a value, and column a is bound throughout.
    rows = [(k, k / 2, None) for k in range(MAX_ROWS_PER_STATEMENT)]
    rows += [(MAX_ROWS_PER_STATEMENT, None, "x"), (MAX_ROWS_PER_STATEMENT + 1, 1.5, None)]
    counting = CountingConnection(nullable_table)
    insert_rows(counting, NULLABLE, rows)  # type: ignore[arg-type]
    assert counting.texts[0].count("(?, ?, NULL)") == MAX_ROWS_PER_STATEMENT
    assert counting.texts[1].count("(?, ?, ?)") == 2
    stored_rows = nullable_table.execute("SELECT k, a, b FROM n ORDER BY k").fetchall()
    assert stored_rows == rows
    null_types = nullable_table.execute("SELECT COUNT(*) FROM n WHERE typeof(b) = 'null'")
    assert null_types.fetchone()[0] == MAX_ROWS_PER_STATEMENT + 1


def test_bulk_null_sets_are_capped() -> None:
    statement = BulkInsert("INSERT INTO w (a, b, c, d, e, f, g)", 7, nullable=(0, 1, 2, 3, 4, 5))
    found = []
    for column in range(6):
        row = tuple(None if position == column else 1 for position in range(7))
        found.append(statement.null_columns([row]))
    assert found[:MAX_NULL_SETS] == [(column,) for column in range(MAX_NULL_SETS)]
    assert found[MAX_NULL_SETS:] == [()] * (6 - MAX_NULL_SETS)
    # A set seen before the cap keeps its literals.
    assert statement.null_columns([(None, 1, 1, 1, 1, 1, 1)]) == (0,)


def test_bulk_nullable_leaves_one_bound_column(nullable_table: sqlite3.Connection) -> None:
    statement = BulkInsert("INSERT INTO n (k, a, b)", 3, nullable=(0, 1))
    insert_rows(nullable_table, statement, [(None, None, "only b")])
    assert nullable_table.execute("SELECT a, b FROM n").fetchall() == [(None, "only b")]


@pytest.mark.parametrize("nullable", [(3,), (-1,), (0, 1, 2), (1, 1, 2)])
def test_bulk_invalid_nullable_raises(nullable: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="invalid nullable columns"):
        BulkInsert("INSERT INTO n (k, a, b)", 3, nullable=nullable)
