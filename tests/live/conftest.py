"""A real server on 127.0.0.1 with a port of its own, and helpers for live stream tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from fleetpulse.config import load_settings
from fleetpulse.server import EmbeddedServer

Frame = dict[str, Any]


@dataclass
class LiveServer:
    """A started EmbeddedServer and an HTTP client for its ingest and query API."""

    server: EmbeddedServer
    http: httpx.AsyncClient

    def ws_url(self, query: str = "") -> str:
        base = self.server.url.replace("http://", "ws://", 1) + "/v1/live"
        return f"{base}?{query}" if query else base

    async def send(self, records: list[dict[str, Any]]) -> None:
        """Post records and wait until the processor has stored them."""
        response = await self.http.post("/v1/telemetry", json=records)
        assert response.status_code == 202, response.text
        assert await self.server.processor.drain(10.0), "processor did not catch up in 10 s"

    async def stored_event_ids(self) -> list[int]:
        response = await self.http.get("/v1/events", params={"after_id": 1, "limit": 10_000})
        first = await self.http.get("/v1/events", params={"limit": 10_000})
        ids = {event["id"] for event in first.json()["events"]}
        ids.update(event["id"] for event in response.json()["events"])
        return sorted(ids)


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory of started servers; ``live`` overrides the [live] section."""
    started: list[LiveServer] = []

    async def start(**live: Any) -> LiveServer:
        settings = load_settings(
            environ={},
            overrides={
                "server": {"data_dir": str(tmp_path / f"data{len(started)}"), "port": 0},
                "live": live,
            },
        )
        server = EmbeddedServer(settings)
        await server.start()
        live_server = LiveServer(server, httpx.AsyncClient(base_url=server.url))
        started.append(live_server)
        return live_server

    yield start
    for live_server in started:
        await live_server.http.aclose()
        await live_server.server.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def drive(
    device_id: str,
    count: int,
    start_ms: int,
    lat: float = 48.137,
    lon: float = 11.575,
    toggle_ignition: bool = False,
) -> list[dict[str, Any]]:
    """Return ``count`` records one second apart; with ``toggle_ignition`` every second
    record switches the ignition, which makes an ignition event."""
    records = []
    for i in range(count):
        ignition = (i // 2) % 2 == 0 if toggle_ignition else True
        records.append(
            {
                "device_id": device_id,
                "ts": start_ms + i * 1000,
                "lat": lat,
                "lon": lon + i * 1e-5,
                "speed_kmh": 30.0,
                "ignition": ignition,
            }
        )
    return records


async def collect(
    ws: ClientConnection, done: Callable[[list[Frame]], bool], timeout_s: float = 10.0
) -> list[Frame]:
    """Read frames until ``done(frames)`` is true or ``timeout_s`` passes."""
    frames: list[Frame] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done(frames):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            raw = await asyncio.wait_for(ws.recv(), remaining)
        except TimeoutError:
            break
        frames.append(json.loads(raw))
    return frames


def events_of(frames: list[Frame]) -> list[Frame]:
    return [event for frame in frames if frame["type"] == "events" for event in frame["events"]]


def vehicles_of(frames: list[Frame]) -> list[Frame]:
    return [view for frame in frames if frame["type"] == "vehicles" for view in frame["vehicles"]]
