"""Opening connections to the PostgreSQL store and translating its errors.

Log lines and error messages name the server by ``host:port/database`` only, because the
DSN may carry a password.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from fleetpulse.config import PostgresSettings
from fleetpulse.errors import StoreError, StoreStorageFullError

# Errors of a failed connection or statement that become StoreError. TimeoutError
# covers the connect timeout, and OSError a refused or reset connection. asyncpg 0.32
# raises InternalClientError ("cannot switch to state ...") for a query on a connection
# whose server process was terminated while the connection sat idle in the pool.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)

# SQLSTATE 53100 disk_full.
_DISK_FULL = "53100"
APPLICATION_NAME = "fleetpulse"


def describe_dsn(dsn: str) -> str:
    """Return ``host:port/database`` of a PostgreSQL URI, without user and password."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "(invalid postgres dsn)"
    database = unquote(parts.path.lstrip("/")) or "(default database)"
    try:
        port = parts.port
    except ValueError:
        # Several hosts ("h1:5432,h2:5433") are valid for asyncpg but not for urlsplit.
        # The part after the last "@" contains them without user and password.
        return f"{parts.netloc.rsplit('@', 1)[-1]}/{database}"
    host = parts.hostname or "localhost"
    return f"{host}:{port or 5432}/{database}"


def connect_options(settings: PostgresSettings) -> dict[str, Any]:
    """Return the keyword arguments of asyncpg.connect() and create_pool() for ``settings``.

    Every session runs in UTC and with ``statement_timeout`` set, so a stuck statement
    fails instead of holding its connection.
    """
    if not settings.dsn.startswith(("postgresql://", "postgres://")):
        raise StoreError(
            f"[postgres] dsn {describe_dsn(settings.dsn)} is invalid: it must be a URI "
            "that starts with postgresql://"
        )
    timeout_ms = round(settings.statement_timeout_s * 1000)
    return {
        "dsn": settings.dsn,
        "timeout": settings.connect_timeout_s,
        "server_settings": {
            "application_name": APPLICATION_NAME,
            "statement_timeout": str(timeout_ms),
            "timezone": "UTC",
        },
    }


async def connect(settings: PostgresSettings, action: str) -> asyncpg.Connection:
    """Open one connection (for migrations and status), or raise StoreError."""
    try:
        connection: asyncpg.Connection = await asyncpg.connect(**connect_options(settings))
    except DATABASE_ERRORS as exc:
        raise translate_error(exc, action, describe_dsn(settings.dsn)) from exc
    return connection


def translate_error(exc: BaseException, action: str, target: str) -> StoreError:
    """Build the StoreError for a failed PostgreSQL call, with ``exc`` as its cause."""
    detail = str(exc) or type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    error: StoreError
    if sqlstate == _DISK_FULL:
        error = StoreStorageFullError(
            f"{action} failed on postgres {target}: the server's disk is full ({detail}). "
            "Free disk space on the database server or shorten store.retention_days"
        )
    elif isinstance(
        exc,
        OSError
        | asyncio.TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError
        | asyncpg.AdminShutdownError,
    ):
        error = StoreError(
            f"{action} failed: connection to postgres {target} failed or was lost "
            f"({detail}). Check that the server is running and [postgres] dsn"
        )
    elif isinstance(exc, asyncpg.QueryCanceledError):
        error = StoreError(
            f"{action} failed on postgres {target}: statement timed out or was cancelled "
            f"({detail}). Raise [postgres] statement_timeout_s if the statement is expected "
            "to run this long"
        )
    else:
        error = StoreError(f"{action} failed on postgres {target}: {detail}")
    error.__cause__ = exc
    return error
