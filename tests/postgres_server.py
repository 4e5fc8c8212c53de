"""A PostgreSQL server for tests: its own cluster on a free loopback port, stopped by PID.

``start_postgres_server(tmp_dir)`` runs ``initdb`` and ``postgres`` and returns a
``PostgresServer``; ``stop()`` sends SIGINT (fast shutdown) to the postmaster's PID. The
session-scoped fixture ``postgres_server`` wraps it, and the fixture ``postgres_dsn``
returns the DSN of a fresh, empty schema for one test and drops it afterwards.

A fresh schema (``create_schema``) is the cheap way to isolate a test: its DSN selects
it with ``?search_path=NAME``, which asyncpg sends as a server setting (libpq and psql
reject that parameter). A fresh database (``create_database``) is fully separate, but
DROP DATABASE forces a checkpoint, which took about 1 s with fsync on here.

If no PostgreSQL binaries are found under /usr/lib/postgresql/*/bin or on PATH, tests
that use the server fail when the environment variable ``CI`` is set and are skipped
otherwise. PostgreSQL will not run as root, so when the tests run as root, ``initdb`` and
``postgres`` run as the ``postgres`` system user. Their files then live in a directory
under the system temp dir chowned to that user, because pytest's temp dirs are private
to root.

Use it in a test module with
``from tests.postgres_server import postgres_dsn_fixture, postgres_server_fixture``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

# The superuser that initdb creates. The server trusts it without a password, on loopback only.
SUPERUSER = "fleetpulse"
HOST = "127.0.0.1"
# The database that contains the schemas of create_schema().
SCHEMAS_DATABASE = "schemas"
# initdb and startup took about 2 s on a loaded 2-core VM, and 60 s allows for a slower
# CI machine.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_MISSING_MESSAGE = (
    "PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin "
    "or on PATH (apt-get install postgresql)"
)


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@dataclass
class PostgresServer:
    """A running PostgreSQL cluster with a trusted superuser on 127.0.0.1."""

    host: str
    port: int
    data_dir: Path
    socket_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    # A directory this module created (when running as root) and removes on stop.
    owned_dir: Path | None = None
    _database_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _schemas_database_created: bool = False

    @property
    def dsn(self) -> str:
        """DSN of the maintenance database ``postgres``."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    async def create_schema(self, name: str | None = None) -> str:
        """Create an empty schema in the shared database ``SCHEMAS_DATABASE`` and return a
        DSN whose sessions use it (and only it) as their search_path."""
        name = name or f"test_{os.getpid()}_{next(self._database_numbers)}"
        if not self._schemas_database_created:
            await self.create_database(SCHEMAS_DATABASE)
            self._schemas_database_created = True
        connection = await asyncpg.connect(self.dsn_for(SCHEMAS_DATABASE))
        try:
            await connection.execute(f'CREATE SCHEMA "{name}"')
        finally:
            await connection.close()
        return f"{self.dsn_for(SCHEMAS_DATABASE)}?search_path={name}"

    async def drop_schema(self, dsn: str) -> None:
        """Drop the schema of a DSN from ``create_schema``, with everything in it."""
        name = dsn.rsplit("search_path=", 1)[1]
        connection = await asyncpg.connect(self.dsn_for(SCHEMAS_DATABASE))
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await connection.close()

    def create_schema_sync(self, name: str | None = None) -> str:
        """``create_schema`` for code without a running event loop."""
        return asyncio.run(self.create_schema(name))

    def drop_schema_sync(self, dsn: str) -> None:
        """``drop_schema`` for code without a running event loop."""
        asyncio.run(self.drop_schema(dsn))

    async def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a copy of template0) and return its DSN."""
        name = name or f"test_{os.getpid()}_{next(self._database_numbers)}"
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await connection.close()
        return self.dsn_for(name)

    async def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting any sessions a test left open on it."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    def create_database_sync(self, name: str | None = None) -> str:
        """``create_database`` for code without a running event loop."""
        return asyncio.run(self.create_database(name))

    def drop_database_sync(self, name: str) -> None:
        """``drop_database`` for code without a running event loop."""
        asyncio.run(self.drop_database(name))

    def stop(self) -> None:
        """Stop the postmaster by PID: SIGINT (fast shutdown), then SIGQUIT, then SIGKILL."""
        process = self.process
        if process.poll() is None:
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
                process.send_signal(sig)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def find_postgres_bin() -> Path | None:
    """Return the directory of the newest installed ``initdb`` and ``postgres``, or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """Return the ``postgres`` user when the tests run as root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as error:
        raise RuntimeError(
            "tests run as root but the 'postgres' system user to run PostgreSQL as is missing: "
            "create it (useradd --system postgres) or run the tests as a normal user"
        ) from error


def _log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _wait_ready(bin_dir: Path, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    command = [str(bin_dir / "pg_isready"), "-q", "-h", HOST, "-p", str(port), "-U", SUPERUSER]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"postgres exited with status {process.returncode} during startup, "
                f"log {log}:\n{_log_tail(log)}"
            )
        if subprocess.run(command, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"postgres timed out: no connections on port {port} within {START_TIMEOUT_S:.0f} s, "
        f"log {log}:\n{_log_tail(log)}"
    )


def start_postgres_server(tmp_dir: Path) -> PostgresServer:
    """Create a cluster with ``initdb`` and start ``postgres`` on a free loopback port.

    The cluster lives in ``tmp_dir`` unless the tests run as root (see the module
    docstring). Raises PostgresMissing when no binaries are installed and RuntimeError
    when the server does not start; the caller stops the server with ``stop()``.
    """
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise PostgresMissing(_MISSING_MESSAGE)

    user = _server_user()
    owned_dir: Path | None = None
    if user is None:
        base = Path(tempfile.mkdtemp(prefix="pg-", dir=tmp_dir))
    else:
        # A short path also keeps the Unix socket under the 107-byte limit.
        base = owned_dir = Path(tempfile.mkdtemp(prefix="fleetpulse-pg-"))
        os.chown(base, user.pw_uid, user.pw_gid)
    data_dir = base / "data"
    socket_dir = base / "sock"
    socket_dir.mkdir()
    log_path = base / "postgres.log"
    log_path.touch()
    if user is not None:
        os.chown(socket_dir, user.pw_uid, user.pw_gid)
        os.chown(log_path, user.pw_uid, user.pw_gid)
    user_id = None if user is None else user.pw_uid
    group_id = None if user is None else user.pw_gid
    # A neutral environment, so the caller's locale and PG* variables do not leak in.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}

    # --no-sync skips only initdb's final flush of the new cluster. The server runs with
    # fsync on (the default), so commits in the tests are as durable as in production.
    initdb = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        env=env,
        check=False,
        user=user_id,
        group=group_id,
    )
    if initdb.returncode != 0:
        if owned_dir is not None:
            shutil.rmtree(owned_dir, ignore_errors=True)
        raise RuntimeError(
            f"initdb failed with status {initdb.returncode} in {data_dir}: "
            f"{initdb.stderr.decode(errors='replace').strip()}"
        )

    port = _free_port()
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data_dir),
                "-p",
                str(port),
                "-k",
                str(socket_dir),
                "-c",
                f"listen_addresses={HOST}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            user=user_id,
            group=group_id,
        )
    server = PostgresServer(
        host=HOST,
        port=port,
        data_dir=data_dir,
        socket_dir=socket_dir,
        log_path=log_path,
        process=process,
        owned_dir=owned_dir,
    )
    try:
        _wait_ready(bin_dir, port, process, log_path)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(name="postgres_server", scope="session")
def postgres_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session, stopped by PID at the end."""
    try:
        server = start_postgres_server(tmp_path_factory.mktemp("postgres"))
    except PostgresMissing as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="postgres_dsn")
async def postgres_dsn_fixture(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """DSN of a fresh, empty schema for one test, dropped afterwards."""
    dsn = await postgres_server.create_schema()
    try:
        yield dsn
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await postgres_server.drop_schema(dsn)
