"""An in-process pipeline on real SQLite files, queried through the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from fleetpulse.config import Geofence, Settings, load_settings
from fleetpulse.server import EmbeddedServer


@dataclass
class Pipeline:
    """A started EmbeddedServer with an httpx client bound to its app (no socket)."""

    server: EmbeddedServer
    client: httpx.AsyncClient

    async def post(self, records: list[dict[str, object]]) -> httpx.Response:
        return await self.client.post("/v1/telemetry", json=records)

    async def drain(self) -> None:
        assert await self.server.processor.drain(10.0), "processor did not catch up in 10 s"


def pipeline_settings(data_dir: Path) -> Settings:
    settings = load_settings(
        environ={}, overrides={"server": {"data_dir": str(data_dir), "port": 0}}
    )
    depot = Geofence(id="depot", name="Depot", lat=48.10, lon=11.50, radius_m=300.0)
    return msgspec.structs.replace(settings, geofences=[depot])


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    server = EmbeddedServer(pipeline_settings(tmp_path / "data"))
    await server.start()
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetpulse") as client:
        yield Pipeline(server, client)
    await server.close()
