"""``fleetpulse db``: create, upgrade and inspect the schema of the PostgreSQL store.

``fleetpulse db upgrade`` applies the pending migrations to the database of
``[postgres] dsn``, and ``fleetpulse db status`` lists the applied and pending ones.

Exit codes: 0 done (status: the schema is current), 1 the database could not be reached
or a migration failed, 2 invalid options or settings, 3 (status only) an upgrade is
pending or the database is newer than this release.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import asyncpg

from fleetpulse.config import Settings, load_settings
from fleetpulse.errors import ConfigError, StoreError
from fleetpulse.store import _pg_schema as schema
from fleetpulse.store._pg_connect import DATABASE_ERRORS, connect, describe_dsn, translate_error

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_OUTDATED = 3


def add_parser(subparsers: Any) -> None:
    """Register the ``db`` sub-command and its ``upgrade`` and ``status`` commands."""
    parser = subparsers.add_parser(
        "db",
        help="create, upgrade or inspect the schema of the PostgreSQL store",
        description=(
            "Manage the schema of the PostgreSQL database of [postgres] dsn. The DSN "
            "comes from --config or FLEETPULSE_POSTGRES_DSN, and a password from the DSN, "
            "PGPASSWORD or ~/.pgpass. Run `fleetpulse db upgrade` once after installing a "
            "release, before starting its processes."
        ),
    )
    commands = parser.add_subparsers(dest="db_command", metavar="COMMAND")
    upgrade = commands.add_parser(
        "upgrade",
        help="apply the pending migrations (creates the tables on an empty database)",
        description=(
            "Apply every pending migration in version order, each in its own transaction. "
            "Safe to run again, and safe to run from two hosts at once: a migration "
            "already applied is skipped."
        ),
    )
    status = commands.add_parser(
        "status",
        help="show the schema version and the applied and pending migrations",
        description=(
            "Show the schema version of the database and the migrations applied and "
            "pending. Exits with 3 if an upgrade is pending."
        ),
    )
    for command in (upgrade, status):
        command.add_argument(
            "--config", metavar="FILE", help="TOML settings file (see docs/configuration.md)"
        )
        command.add_argument(
            "--log-level",
            choices=["debug", "info", "warning", "error"],
            default="warning",
            help="log verbosity on stderr (default: %(default)s)",
        )
    upgrade.set_defaults(func=run_upgrade)
    status.set_defaults(func=run_status)
    parser.set_defaults(func=_print_help(parser))


def run_upgrade(args: argparse.Namespace) -> int:
    """Run ``fleetpulse db upgrade`` and return the exit code."""
    settings = _settings(args, "upgrade")
    if settings is None:
        return EXIT_USAGE
    try:
        return asyncio.run(_upgrade(settings))
    except StoreError as exc:
        print(f"fleetpulse db upgrade: {exc}", file=sys.stderr)
        return EXIT_FAILED


def run_status(args: argparse.Namespace) -> int:
    """Run ``fleetpulse db status`` and return the exit code."""
    settings = _settings(args, "status")
    if settings is None:
        return EXIT_USAGE
    try:
        return asyncio.run(_status(settings))
    except StoreError as exc:
        print(f"fleetpulse db status: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _upgrade(settings: Settings) -> int:
    target = describe_dsn(settings.postgres.dsn)
    connection = await connect(settings.postgres, "schema upgrade")
    try:
        before = await _version(connection, target)
        needed = schema.latest_version()
        print(f"postgres {target}: schema version {before}, this release needs {needed}")
        schema.check_not_newer(before, target)
        if before == needed:
            print("nothing to do: the schema is current")
            return 0

        started = time.monotonic()

        def show(migration: schema.Migration, seconds: float) -> None:
            print(
                f"applied {migration.version:04d}_{migration.name} in {seconds:.2f} s",
                flush=True,
            )

        try:
            applied = await schema.upgrade(connection, target, on_applied=show)
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "schema upgrade", target) from exc
        after = await _version(connection, target)
    finally:
        await connection.close()
    print(
        f"upgraded postgres {target} from schema version {before} to {after}: "
        f"{len(applied)} migration(s) applied in {time.monotonic() - started:.2f} s"
    )
    return 0


async def _status(settings: Settings) -> int:
    target = describe_dsn(settings.postgres.dsn)
    connection = await connect(settings.postgres, "schema status")
    try:
        try:
            applied = await schema.applied_migrations(connection)
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "schema status", target) from exc
    finally:
        await connection.close()

    version = applied[-1].version if applied else 0
    needed = schema.latest_version()
    print(f"postgres {target}: schema version {version}, this release needs {needed}")
    for row in applied:
        print(f"  applied  {row.version:04d}_{row.name}  at {row.applied_at:%Y-%m-%d %H:%M:%S %Z}")
    for migration in schema.migrations():
        if migration.version > version:
            print(f"  pending  {migration.version:04d}_{migration.name}")
    if version < needed:
        print("run `fleetpulse db upgrade` to apply the pending migrations")
        return EXIT_OUTDATED
    if version > needed:
        print("the database is newer than this release: upgrade fleetpulse")
        return EXIT_OUTDATED
    print("the schema is current")
    return 0


async def _version(connection: asyncpg.Connection, target: str) -> int:
    try:
        return await schema.current_version(connection)
    except DATABASE_ERRORS as exc:
        raise translate_error(exc, "schema version check", target) from exc


def _settings(args: argparse.Namespace, command: str) -> Settings | None:
    from fleetpulse.cli.main import configure_logging

    configure_logging(args.log_level)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"fleetpulse db {command}: {exc}", file=sys.stderr)
        return None
    if settings.store.backend != "postgres":
        print(
            f'note: [store] backend is "{settings.store.backend}"; this command manages the '
            "PostgreSQL database of [postgres] dsn, which that backend does not use",
            file=sys.stderr,
        )
    return settings


def _print_help(parser: argparse.ArgumentParser) -> Any:
    def show(_args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE

    return show
