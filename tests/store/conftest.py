"""Fixtures for the store tests: every backend in BACKENDS, opened on a fresh data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetpulse.store.base import Store, open_store

# One server for the whole session: a test module that imported these fixtures itself
# would get its own session-scoped server.
from tests.postgres_server import (  # noqa: F401  (the fixtures)
    PostgresServer,
    postgres_dsn_fixture,
    postgres_server_fixture,
)
from tests.store.store_helpers import OpenStore, make_settings

# Backends the contract tests run against; a new backend adds its name here.
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend_name: str = request.param
    return backend_name


@pytest.fixture
def postgres_test_dsn(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """DSN of a fresh schema for the postgres backend, dropped afterwards, else None.

    The session's server is requested only when the backend needs it, so the SQLite
    runs start no server. A sync fixture, because create_schema_sync() runs its own
    event loop, which cannot start inside a running one.
    """
    if backend != "postgres":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    dsn = server.create_schema_sync()
    yield dsn
    server.drop_schema_sync(dsn)


@pytest.fixture
async def open_test_store(
    backend: str, postgres_test_dsn: str | None, tmp_path: Path
) -> AsyncIterator[OpenStore]:
    """A function that opens (or reopens) the backend's store on one data dir or schema.

    Keyword arguments override ``[store]`` settings. Stores still open at the end of
    the test are closed.
    """
    opened: list[Store] = []

    async def open_(**store_fields: Any) -> Store:
        settings = make_settings(backend, tmp_path / "data", postgres_test_dsn, **store_fields)
        store = open_store(settings)
        await store.start()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_test_store: OpenStore) -> Store:
    return await open_test_store()
