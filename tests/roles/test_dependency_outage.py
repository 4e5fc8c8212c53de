"""Standalone roles while nats-server or PostgreSQL is down: health, ingest and API errors.

Each test starts its own servers on free loopback ports and stops one of them by PID,
so the outage is real: refused connections, not a stubbed error.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from fleetpulse.config import load_settings
from fleetpulse.roles.standalone import RoleName, RoleServer
from tests.nats_server import (
    NatsServer,
    nats_server_fixture,
    require_nats_server,
    start_nats_server,
)
from tests.postgres_server import PostgresMissing, PostgresServer, start_postgres_server

__all__ = ["nats_server_fixture"]

# The health check caches its result for 2 s and a backend check gives up after 2 s,
# so /healthz must turn within about 4 s. The 15 s bound allows for a loaded machine.
TURN_S = 15.0
RECORD = {"device_id": "truck-1", "ts": "2026-12-04T08:00:00Z", "lat": 48.1, "lon": 11.5}

RoleFactory = Callable[[RoleName], AbstractAsyncContextManager[RoleServer]]


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server that this test alone uses, so that it may stop it."""
    try:
        server = start_postgres_server(tmp_path / "pg")
    except PostgresMissing as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def roles(tmp_path: Path, nats_server: NatsServer, own_postgres: PostgresServer) -> RoleFactory:
    """Start a RoleServer on the test's nats-server and PostgreSQL, and close it on exit."""

    @asynccontextmanager
    async def start(role: RoleName) -> AsyncIterator[RoleServer]:
        settings = load_settings(
            environ={},
            overrides={
                "server": {"data_dir": str(tmp_path / f"data-{role}"), "port": 0},
                "queue": {"backend": "jetstream"},
                "store": {"backend": "postgres"},
                "postgres": {
                    "dsn": own_postgres.dsn,
                    "auto_upgrade": True,
                    "connect_timeout_s": 2.0,
                },
                "nats": {"url": nats_server.url, "request_timeout_s": 2.0},
                "live": {"bus": "nats"},
            },
        )
        server = RoleServer(settings, role)
        await server.start()
        try:
            yield server
        finally:
            await server.close()

    return start


async def _wait_status(http: httpx.AsyncClient, path: str, status: int) -> httpx.Response:
    deadline = time.monotonic() + TURN_S
    while True:
        response = await http.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_postgres_down_healthz_503(roles: RoleFactory, own_postgres: PostgresServer) -> None:
    async with roles("api") as api, httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        assert (await http.get("/healthz")).status_code == 200

        own_postgres.stop()
        response = await _wait_status(http, "/healthz", 503)

    assert response.status_code == 503
    problems: list[str] = response.json()["problems"]
    assert any("store unreachable" in problem for problem in problems), problems


async def test_postgres_down_api_503_json(roles: RoleFactory, own_postgres: PostgresServer) -> None:
    async with roles("api") as api, httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        own_postgres.stop()
        response = await http.get("/v1/fleet/summary")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "store_unavailable"
    assert int(response.headers["retry-after"]) > 0


async def test_postgres_down_dead_letter_503(
    roles: RoleFactory, own_postgres: PostgresServer
) -> None:
    rejected = {**RECORD, "ts": "nonsense"}
    async with (
        roles("ingest") as ingest,
        httpx.AsyncClient(base_url=ingest.url, timeout=30) as http,
    ):
        own_postgres.stop()
        response = await http.post("/v1/telemetry", json=[RECORD, rejected])

    # A 202 would tell the client that the rejected record is kept as a dead letter.
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0


async def test_nats_down_healthz_503(
    roles: RoleFactory, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with (
        roles("ingest") as ingest,
        httpx.AsyncClient(base_url=ingest.url, timeout=30) as http,
    ):
        assert (await http.get("/healthz")).status_code == 200

        nats_server.process.terminate()
        nats_server.process.wait(timeout=10)
        down = await _wait_status(http, "/healthz", 503)
        started = time.monotonic()
        unavailable = await http.post("/v1/telemetry", json=[RECORD])
        unavailable_s = time.monotonic() - started

        restart = start_nats_server(tmp_path, require_nats_server(), port=nats_server.port)
        with restart:
            up = await _wait_status(http, "/healthz", 200)
            accepted = await _post_until_accepted(http)

    assert down.status_code == 503
    problems: list[str] = down.json()["problems"]
    assert any("queue unreachable" in problem for problem in problems), problems
    assert unavailable.status_code == 503
    # Fail fast: one publish attempt's timeout (2 s here) would already be too slow.
    assert unavailable_s < 1.0
    assert up.status_code == 200
    assert accepted.status_code == 202


async def _post_until_accepted(http: httpx.AsyncClient) -> httpx.Response:
    deadline = time.monotonic() + TURN_S
    while True:
        response = await http.post("/v1/telemetry", json=[RECORD])
        if response.status_code == 202 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)
