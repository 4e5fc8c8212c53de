"""Versioned schema migrations of the PostgreSQL store.

The migrations are the files ``migrations/postgres/NNNN_name.sql`` of this package,
applied in version order. The table ``schema_version`` lists those applied, so the schema
version of a database is its highest row. Each migration runs in its own transaction
under an advisory lock, so processes that upgrade at the same moment apply it once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

import asyncpg

from fleetpulse.errors import StoreError

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key that serializes migrations ("fltp" and 1 in hex).
MIGRATION_LOCK_KEY = 0x666C_7470_0000_0001
MIGRATIONS_PACKAGE = "fleetpulse.store.migrations"
MIGRATIONS_DIR = "postgres"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class SchemaVersionError(StoreError):
    """The database schema does not match this release, so retrying the call cannot help."""

    retriable = False


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file that takes the schema from ``version - 1`` to ``version``."""

    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``schema_version``."""

    version: int
    name: str
    applied_at: datetime


@cache
def migrations() -> tuple[Migration, ...]:
    """Load the migration files of the package, ordered by version.

    Raises StoreError if a file name is malformed or the versions are not 1, 2, 3, ...
    """
    directory = resources.files(MIGRATIONS_PACKAGE).joinpath(MIGRATIONS_DIR)
    found: list[Migration] = []
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise StoreError(
                f"migration file {entry.name} is misnamed: expected NNNN_name.sql "
                "(four digits, lower-case name)"
            )
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migration versions must run 1, 2, 3, ... without gaps, not {versions}")
    return tuple(found)


def latest_version() -> int:
    """Return the schema version this release needs: the highest migration's."""
    return migrations()[-1].version


async def current_version(connection: asyncpg.Connection) -> int:
    """Return the database's schema version, 0 when no migration ran yet."""
    exists = await connection.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await connection.fetchval("SELECT COALESCE(max(version), 0) FROM schema_version")
    return int(version)


async def applied_migrations(connection: asyncpg.Connection) -> list[AppliedMigration]:
    """Return the rows of ``schema_version``, oldest first (none before the first upgrade)."""
    exists = await connection.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return []
    rows = await connection.fetch(
        "SELECT version, name, applied_at FROM schema_version ORDER BY version"
    )
    return [AppliedMigration(row["version"], row["name"], row["applied_at"]) for row in rows]


def check_not_newer(version: int, target: str) -> None:
    """Raise SchemaVersionError if the database was migrated by a newer release."""
    if version > latest_version():
        raise SchemaVersionError(
            f"postgres {target} has schema version {version}, newer than {latest_version()} "
            "that this fleetpulse release reads; upgrade fleetpulse"
        )


async def upgrade(
    connection: asyncpg.Connection,
    target: str,
    on_applied: Callable[[Migration, float], None] | None = None,
) -> list[Migration]:
    """Apply the pending migrations, each in its own transaction, and return them.

    ``on_applied(migration, seconds)`` is called after each commit. A migration applied
    meanwhile by another process is skipped. Raises SchemaVersionError when the
    database is newer than this release.
    """
    applied: list[Migration] = []
    check_not_newer(await current_version(connection), target)
    for migration in migrations():
        started = time.monotonic()
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await connection.execute(CREATE_VERSION_TABLE)
            version = await current_version(connection)
            if version >= migration.version:
                continue
            log.info(
                "migration starting target=%s version=%d name=%s",
                target,
                migration.version,
                migration.name,
            )
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        seconds = time.monotonic() - started
        log.info(
            "migration applied target=%s version=%d name=%s seconds=%.3f",
            target,
            migration.version,
            migration.name,
            seconds,
        )
        applied.append(migration)
        if on_applied is not None:
            on_applied(migration, seconds)
    return applied
