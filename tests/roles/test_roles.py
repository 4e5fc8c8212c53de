"""The three roles wired as the separate commands wire them, in one test process.

The ingest, process and API roles share SQLite backends here, which the standalone
commands reject, so that the wiring and the NATS live bus are tested without the
JetStream queue and the PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetpulse.cli.main import main as cli_main
from fleetpulse.config import Settings, load_settings
from fleetpulse.errors import ConfigError
from fleetpulse.live.bus import NatsLiveBus
from fleetpulse.live.filters import LiveFilter
from fleetpulse.live.session import LiveSession
from fleetpulse.queue.base import open_queue
from fleetpulse.roles.api import ApiRole
from fleetpulse.roles.ingest import IngestRole
from fleetpulse.roles.process import ProcessRole
from fleetpulse.roles.standalone import RoleServer, check_role_settings, describe_backends
from fleetpulse.server import EmbeddedServer
from fleetpulse.store.base import open_store
from tests.nats_server import NatsServer, nats_server_fixture

__all__ = ["nats_server_fixture"]

SUBJECT = "test.roles.live"
WAIT_S = 10.0


@dataclass
class Pipeline:
    ingest: IngestRole
    process: ProcessRole
    api: ApiRole
    session: LiveSession


def _settings(tmp_path: Path, **live: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={"server": {"data_dir": str(tmp_path / "data"), "port": 0}, "live": live},
    )


def _records(device_id: str, count: int, start_ms: int) -> bytes:
    records = [
        {
            "device_id": device_id,
            "ts": start_ms + index * 1000,
            "lat": 48.137,
            "lon": 11.575 + index * 1e-4,
            "speed_kmh": 30.0,
            # Switches every second record, so that the processor emits ignition events.
            "ignition": (index // 2) % 2 == 0,
        }
        for index in range(count)
    ]
    return json.dumps(records).encode()


async def _wait_for(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def pipeline(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[Pipeline]:
    """Three roles on shared SQLite backends, joined by a NATS live bus."""
    settings = _settings(tmp_path)
    queue = open_queue(settings)
    store = open_store(settings)
    publisher = NatsLiveBus(nats_server.url, SUBJECT, "test-process")
    subscriber = NatsLiveBus(nats_server.url, SUBJECT, "test-api")
    ingest = IngestRole(settings, queue, store)
    process = ProcessRole(settings, queue, store, publisher.publish)
    api = ApiRole(settings, store)
    subscriber.subscribe(api.live.publish)

    await store.start()
    await queue.start()
    await api.start()
    await subscriber.start()
    await publisher.start()
    await process.start()
    await ingest.start()
    session = api.live.register(LiveFilter(), 1.0, "test-client")
    try:
        yield Pipeline(ingest, process, api, session)
    finally:
        api.live.unregister(session)
        await ingest.close()
        await api.close()
        await process.close()
        await publisher.close()
        await subscriber.close()
        await queue.close()
        await store.close()


async def test_api_role_streams_processor_updates(pipeline: Pipeline) -> None:
    start_ms = pipeline.api.context.clock_ms() - 600_000

    result = await pipeline.ingest.service.ingest_body(
        _records("truck-1", 12, start_ms), "application/json"
    )
    assert result.accepted == 12
    assert await pipeline.process.processor.drain(WAIT_S)

    session = pipeline.session
    await _wait_for(lambda: "truck-1" in session.views)
    assert session.views["truck-1"].last_ts_ms == start_ms + 11_000

    store = pipeline.api.context.store
    stored = await store.events("truck-1", None, 0, 2**62, 100)
    assert stored, "the processor stored no event; the records should toggle the ignition"
    await _wait_for(lambda: len(session.events) >= len(stored))
    streamed_ids = sorted(event.id for event in session.events)
    assert streamed_ids == sorted(row.id for row in stored)


def test_role_settings_reject_sqlite_queue(tmp_path: Path) -> None:
    settings = _settings(tmp_path)

    with pytest.raises(ConfigError) as caught:
        check_role_settings(settings, "ingest")

    assert '[queue] backend is "sqlite"' in str(caught.value)


def test_role_settings_reject_sqlite_store_for_api(tmp_path: Path) -> None:
    settings = _settings(tmp_path, bus="nats")

    with pytest.raises(ConfigError) as caught:
        RoleServer(settings, "api")

    assert '[store] backend is "sqlite"' in str(caught.value)


@pytest.mark.parametrize("role", ["ingest", "process", "api"])
def test_role_command_rejects_sqlite(
    tmp_path: Path, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = cli_main([role, "--data-dir", str(tmp_path / "data"), "--port", "0"])

    assert exit_code == 1
    error = capsys.readouterr().err
    assert f"fleetpulse {role}:" in error
    assert "fleetpulse run" in error


def test_role_settings_reject_local_bus_for_api(tmp_path: Path) -> None:
    settings = load_settings(
        environ={},
        overrides={
            "queue": {"backend": "jetstream"},
            "store": {"backend": "postgres"},
            "live": {"bus": "local"},
        },
    )

    with pytest.raises(ConfigError) as caught:
        check_role_settings(settings, "api")

    assert '[live] bus "nats"' in str(caught.value)
    # Ingest publishes no live updates, so it accepts any bus.
    check_role_settings(settings, "ingest")


def test_describe_backends_hides_credentials() -> None:
    settings = load_settings(
        environ={},
        overrides={
            "queue": {"backend": "jetstream"},
            "store": {"backend": "postgres"},
            "nats": {"url": "nats://fleet:natssecret@nats1.internal:4222"},
            "postgres": {"dsn": "postgresql://fleet:pgsecret@db1.internal:5433/fleet"},
        },
    )

    described = describe_backends(settings, "process")

    assert "natssecret" not in described
    assert "pgsecret" not in described
    assert "nats=nats://nats1.internal:4222" in described
    assert "postgres=db1.internal:5433/fleet" in described
    assert "live_bus=nats subject=fleetpulse.live" in described


async def test_embedded_server_streams_over_nats_bus(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    settings = load_settings(
        environ={},
        overrides={
            "server": {"data_dir": str(tmp_path / "data"), "port": 0},
            "live": {"bus": "nats", "subject": SUBJECT},
            "nats": {"url": nats_server.url},
        },
    )
    server = EmbeddedServer(settings)
    await server.start()
    try:
        session = server.live.register(LiveFilter(), 1.0, "test-client")
        start_ms = server.context.clock_ms() - 600_000
        result = await server.ingest.ingest_body(_records("van-7", 6, start_ms), "application/json")
        assert result.accepted == 6
        assert await server.processor.drain(WAIT_S)

        await _wait_for(lambda: "van-7" in session.views)
        assert server.bus.describe() == f"nats {nats_server.url} subject {SUBJECT}"
        server.live.unregister(session)
    finally:
        await server.close()
