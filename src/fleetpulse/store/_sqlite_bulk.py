"""Multi-row INSERT statements for the write path of the embedded store.

``executemany`` binds and steps one row at a time, and Python's sqlite3 module releases
the GIL around every step and takes it back after. While the processing thread and the
event loop keep the GIL busy, taking it back can wait up to the interpreter's switch
interval (5 ms by default) per row. One statement of many rows (``VALUES (...), (...)``)
binds all of them in one C call and takes the GIL back once per statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

# Rows per statement at most. Larger statements gain little, and their SQL text grows
# with the row count.
MAX_ROWS_PER_STATEMENT = 1024


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """An INSERT split around its VALUES list: ``{head} VALUES (?, ...), ... {tail}``.

    ``columns`` is the number of ``?`` per row. ``tail`` may hold an ON CONFLICT clause,
    and starts with white space when it is not empty.
    """

    head: str
    columns: int
    tail: str = ""
    _texts: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def single(self) -> str:
        """Return the statement for one row, for ``executemany`` and other backends."""
        return self.text(1)

    def text(self, rows: int) -> str:
        """Return the statement for ``rows`` rows."""
        text = self._texts.get(rows)
        if text is None:
            row = "(" + ", ".join("?" * self.columns) + ")"
            text = f"{self.head} VALUES {', '.join([row] * rows)}{self.tail}"
            self._texts[rows] = text
        return text


def insert_rows(
    connection: sqlite3.Connection, statement: BulkInsert, rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` in as few statements as the connection's parameter limit allows.

    Rows are inserted in order, so a later row meets the conflicts of an earlier one as
    with ``executemany``. Statements have power-of-two row counts, so each BulkInsert
    adds at most eleven texts to the connection's statement cache.
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
        parameters = list(chain.from_iterable(pending[start : start + size]))
        connection.execute(statement.text(size), parameters)
        start += size


def _power_of_two_floor(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)
