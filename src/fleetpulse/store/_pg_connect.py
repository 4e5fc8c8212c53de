"""Opening connections to the PostgreSQL store and translating its errors.

Log lines and error messages name the server by ``host:port/database`` only, because the
DSN may carry a password.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

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
    """Return ``host:port/database`` of a PostgreSQL DSN, without user and password.

    Accepts the URI form and the libpq keyword form (``host=... dbname=...``). A DSN
    that parses as neither is described without any of its text, because the text may
    contain a password.
    """
    if not dsn.startswith(("postgresql://", "postgres://")):
        try:
            keywords = parse_keyword_dsn(dsn)
        except ValueError:
            return "(invalid postgres dsn)"
        host = keywords.get("host") or keywords.get("hostaddr") or "localhost"
        port = keywords.get("port") or "5432"
        return f"{host}:{port}/{keywords.get('dbname') or '(default database)'}"
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "(invalid postgres dsn)"
    database = unquote(parts.path.lstrip("/")) or "(default database)"
    try:
        uri_port = parts.port
    except ValueError:
        # urlsplit rejects several hosts ("h1:5432,h2:5433"), which asyncpg accepts, and an
        # invalid port. The part after the last "@" contains no user or password.
        return f"{parts.netloc.rsplit('@', 1)[-1]}/{database}"
    host = parts.hostname or "localhost"
    return f"{host}:{uri_port or 5432}/{database}"


# The libpq connection keywords that asyncpg also reads from a URI's query string
# (asyncpg 0.32 connect_utils._parse_connect_dsn_and_args). Any other keyword would be
# sent to the server as a run-time setting, so the keyword form rejects it.
KEYWORDS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "dbname",
        "passfile",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "target_session_attrs",
    }
)
_KEYWORD = re.compile(r"\s*([A-Za-z_]+)\s*=\s*")
_URI_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"


def parse_keyword_dsn(dsn: str) -> dict[str, str]:
    """Parse a libpq keyword DSN (``host=db port=5432 password='a b'``) into a dict.

    Values are bare words or single-quoted strings with backslash escapes, as in libpq.
    Raises ValueError naming the position (never the text, which may contain a password).
    """
    keywords: dict[str, str] = {}
    position = 0
    while position < len(dsn):
        if dsn[position:].strip() == "":
            break
        match = _KEYWORD.match(dsn, position)
        if match is None:
            raise ValueError(f"expected keyword=value at character {position}")
        key = match.group(1)
        position = match.end()
        value, position = _keyword_value(dsn, position)
        keywords[key] = value
    if not keywords:
        raise ValueError("no keyword=value pairs")
    return keywords


def _keyword_value(dsn: str, position: int) -> tuple[str, int]:
    """Read one value starting at ``position``, and return it with the position after it."""
    chars: list[str] = []
    if position < len(dsn) and dsn[position] == "'":
        position += 1
        while position < len(dsn):
            char = dsn[position]
            if char == "\\" and position + 1 < len(dsn):
                chars.append(dsn[position + 1])
                position += 2
            elif char == "'":
                return "".join(chars), position + 1
            else:
                chars.append(char)
                position += 1
        raise ValueError("a quoted value has no closing quote")
    while position < len(dsn) and not dsn[position].isspace():
        if dsn[position] == "\\" and position + 1 < len(dsn):
            position += 1
        chars.append(dsn[position])
        position += 1
    return "".join(chars), position


def uri_from_dsn(dsn: str) -> str:
    """Return ``dsn`` as a URI that asyncpg accepts, converting the libpq keyword form.

    Raises StoreError, without the DSN's text, when the DSN is neither form, names an
    unsupported keyword or has a port outside 1-65535.
    """
    if dsn.startswith(("postgresql://", "postgres://")):
        _check_uri_port(dsn)
        return dsn
    try:
        keywords = parse_keyword_dsn(dsn)
    except ValueError as exc:
        raise StoreError(
            f"[postgres] dsn is invalid: it is neither a URI such as {_URI_EXAMPLE} nor "
            f"libpq keyword=value pairs ({exc}); set it to the URI form"
        ) from None
    unknown = sorted(set(keywords) - KEYWORDS)
    if unknown:
        raise StoreError(
            f"[postgres] dsn {describe_dsn(dsn)} is invalid: keyword {unknown[0]!r} is not "
            f"supported (supported: {', '.join(sorted(KEYWORDS))}); remove it or use the "
            f"URI form {_URI_EXAMPLE}"
        )
    if "hostaddr" in keywords:
        keywords.setdefault("host", keywords["hostaddr"])
        del keywords["hostaddr"]
    for port in keywords.get("port", "").split(","):
        if port:
            _check_port(port, dsn)
    return "postgresql://?" + urlencode(keywords, quote_via=quote)


def _check_uri_port(dsn: str) -> None:
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:
        raise StoreError(
            f"[postgres] dsn is invalid: {exc}; set it to a URI such as {_URI_EXAMPLE}"
        ) from None
    try:
        # urlsplit checks the port only when it is read, and raises ValueError for one
        # out of range, for a non-number, and for several hosts.
        _ = parts.port
    except ValueError:
        # Several hosts are split by asyncpg itself, and their ports checked below.
        for host in parts.netloc.rsplit("@", 1)[-1].split(","):
            # An IPv6 address is in brackets, and its port follows the "]".
            after_address = host.rsplit("]", 1)[-1]
            if ":" in after_address:
                _check_port(after_address.rsplit(":", 1)[1], dsn)
        return
    for value in parse_qs(parts.query).get("port", []):
        for port in value.split(","):
            _check_port(port, dsn)


def _check_port(port: str, dsn: str) -> None:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise StoreError(
            f"[postgres] dsn {describe_dsn(dsn)} is invalid: port {port!r} is not a number "
            "from 1 to 65535; set the port of the PostgreSQL server (default 5432)"
        )


def connect_options(settings: PostgresSettings) -> dict[str, Any]:
    """Return the keyword arguments of asyncpg.connect() and create_pool() for ``settings``.

    Raises StoreError when ``[postgres] dsn`` is invalid (see ``uri_from_dsn``).

    Every session runs in UTC and with ``statement_timeout`` set, so a stuck statement
    fails instead of holding its connection.
    """
    dsn = uri_from_dsn(settings.dsn)
    timeout_ms = round(settings.statement_timeout_s * 1000)
    return {
        "dsn": dsn,
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
