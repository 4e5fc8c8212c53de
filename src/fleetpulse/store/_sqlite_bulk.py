"""Multi-row INSERT statements for the write path of the embedded store.

``executemany`` binds and steps one row at a time, and Python's sqlite3 module releases
the GIL around every step and takes it back after. While the processing thread and the
event loop keep the GIL busy, taking it back can wait up to the interpreter's switch
interval (5 ms by default) per row. One statement of many rows (``VALUES (...), (...)``)
binds all of them in one C call and takes the GIL back once per statement.

Binding None or a bool costs Python's sqlite3 module (CPython 3.11) about 350 ns, and
an int or a float about 95 ns (measured on the 2-core benchmark VM). The module looks
for an adapter for every parameter whose type is not exactly int, float, str or
bytearray. A column that is None in every row of a statement is therefore written as
the literal NULL instead of a parameter (``BulkInsert.nullable``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

# Rows per statement at most. Larger statements gain little, and their SQL text grows
# with the row count.
MAX_ROWS_PER_STATEMENT = 1024

# Different sets of NULL columns that one BulkInsert writes as literals. Each set adds up
# to eleven texts (one per power-of-two row count) to the connection's statement cache,
# and preparing a statement of 1,024 rows again costs milliseconds. So the first sets
# seen are kept, and rows with a different set bind their NULLs as parameters.
MAX_NULL_SETS = 2

RowPicker = Callable[[Sequence[Any]], Sequence[Any]]


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """An INSERT split around its VALUES list: ``{head} VALUES (?, ...), ... {tail}``.

    ``columns`` is the number of ``?`` per row. ``tail`` may hold an ON CONFLICT clause,
    and starts with white space when it is not empty. ``nullable`` lists the positions
    of columns that are often None. When one of them is None in every row of a
    statement, that statement writes it as the literal NULL and does not bind it.
    """

    head: str
    columns: int
    tail: str = ""
    nullable: tuple[int, ...] = ()
    _texts: dict[tuple[int, tuple[int, ...]], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _pickers: dict[tuple[int, ...], RowPicker] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        outside = [column for column in self.nullable if not 0 <= column < self.columns]
        distinct = len(set(self.nullable))
        if outside or distinct < len(self.nullable) or distinct >= self.columns:
            raise ValueError(
                f"invalid nullable columns {self.nullable} for {self.columns} columns: "
                "give distinct positions from 0 to columns - 1 and leave one column bound"
            )

    @property
    def single(self) -> str:
        """Return the statement for one row, for ``executemany`` and other backends."""
        return self.text(1)

    def text(self, rows: int, nulls: tuple[int, ...] = ()) -> str:
        """Return the statement for ``rows`` rows with the literal NULL in columns ``nulls``."""
        key = (rows, nulls)
        text = self._texts.get(key)
        if text is None:
            values = ", ".join("NULL" if column in nulls else "?" for column in range(self.columns))
            row = f"({values})"
            text = f"{self.head} VALUES {', '.join([row] * rows)}{self.tail}"
            self._texts[key] = text
        return text

    def null_columns(self, rows: Sequence[Sequence[Any]]) -> tuple[int, ...]:
        """Return the nullable columns that are None in every one of ``rows``, in order.

        Returns () when that set of columns would exceed MAX_NULL_SETS.
        """
        if not self.nullable or not rows:
            return ()
        first = rows[0]
        count = len(rows)
        nulls = tuple(
            column
            for column in self.nullable
            if first[column] is None and list(map(itemgetter(column), rows)).count(None) == count
        )
        if nulls and nulls not in self._pickers:
            if len(self._pickers) >= MAX_NULL_SETS:
                return ()
            self._pickers[nulls] = _picker(
                [column for column in range(self.columns) if column not in nulls]
            )
        return nulls

    def row_picker(self, nulls: tuple[int, ...]) -> RowPicker:
        """Return the function that takes from a row the values a statement with NULL
        columns ``nulls`` binds. ``nulls`` must be a non-empty result of ``null_columns``.
        """
        return self._pickers[nulls]


def insert_rows(
    connection: sqlite3.Connection, statement: BulkInsert, rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` in as few statements as the connection's parameter limit allows.

    Rows are inserted in order, so a later row meets the conflicts of an earlier one as
    with ``executemany``. Statements have power-of-two row counts, so each BulkInsert
    adds at most eleven texts per set of NULL columns to the connection's statement cache.
    """
    pending = rows if isinstance(rows, list) else list(rows)
    if not pending:
        return
    limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = _power_of_two_floor(min(MAX_ROWS_PER_STATEMENT, limit // statement.columns))
    start = 0
    total = len(pending)
    while start < total:
        size = min(per_statement, _power_of_two_floor(total - start))
        chunk = pending[start : start + size]
        nulls = statement.null_columns(chunk)
        if nulls:
            picker = statement.row_picker(nulls)
            parameters = list(chain.from_iterable(map(picker, chunk)))
        else:
            parameters = list(chain.from_iterable(chunk))
        connection.execute(statement.text(size, nulls), parameters)
        start += size


def _picker(columns: list[int]) -> RowPicker:
    # itemgetter with one position returns the value itself, not a tuple of it.
    if len(columns) == 1:
        only = columns[0]
        return lambda row: (row[only],)
    getter: RowPicker = itemgetter(*columns)
    return getter


def _power_of_two_floor(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)
