"""Opening SQLite connections the way both SQLite backends need them, and translating errors.

The queue imports these helpers too, so that both embedded backends open their files
with the same pragmas and report a full disk the same way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal, TypeVar

from fleetpulse.errors import FleetpulseError

# A reader can meet a checkpoint or WAL recovery in progress. Waiting this long for the
# lock is cheaper than failing an API request.
BUSY_TIMEOUT_MS = 5_000
# After a checkpoint, SQLite truncates the WAL file back to this size, so one burst does
# not keep its disk space forever.
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# Prepared statements kept per connection. The backends use fewer SQL texts than this.
CACHED_STATEMENTS = 64

Synchronous = Literal["full", "normal"]

ErrorT = TypeVar("ErrorT", bound=FleetpulseError)


def connect_writer(
    path: Path,
    synchronous: Synchronous,
    cache_kib: int,
    cached_statements: int = CACHED_STATEMENTS,
) -> sqlite3.Connection:
    """Open a read-write connection in WAL mode with explicit transactions.

    ``synchronous`` is "full" (fsync on every commit: survives power loss) or "normal"
    (no fsync on commit in WAL mode: survives a process crash). ``cache_kib`` is the
    page cache size in KiB, and ``cached_statements`` the number of prepared statements
    the connection keeps. The connection may be used from one thread at a time.
    """
    if synchronous not in ("full", "normal"):
        raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")

    # isolation_level=None leaves transactions to the caller's BEGIN and COMMIT.
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=cached_statements
    )
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{path} cannot use WAL mode (journal_mode is {mode})")
        connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
        connection.execute(f"PRAGMA cache_size = {-cache_kib}")
    except BaseException:
        connection.close()
        raise
    return connection


def connect_reader(path: Path) -> sqlite3.Connection:
    """Open a connection that can only read. WAL lets it read while the writer commits."""
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=CACHED_STATEMENTS
    )
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA query_only = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def is_disk_full(exc: sqlite3.Error) -> bool:
    """Return whether SQLite failed because the disk or the page limit is full (SQLITE_FULL)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL:
        return True
    return "database or disk is full" in str(exc)


def translate_error(
    exc: sqlite3.Error, error_type: type[ErrorT], action: str, path: Path
) -> ErrorT:
    """Build the fleetpulse error for a failed SQLite call, with ``exc`` as its cause."""
    if is_disk_full(exc):
        message = (
            f"{action} failed on {path}: database or disk is full; free disk space "
            "or shorten store.retention_days"
        )
    else:
        message = f"{action} failed on {path}: {exc}"
    error = error_type(message)
    error.__cause__ = exc
    return error
