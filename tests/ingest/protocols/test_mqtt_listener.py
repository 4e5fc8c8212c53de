"""The MQTT subscriber against a real Mosquitto broker, in front of a real EmbeddedServer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fleetpulse.config import load_settings
from fleetpulse.ingest.protocols.mqtt import MqttListener
from fleetpulse.model.timestamps import now_ms
from fleetpulse.server import EmbeddedServer
from tests.mqtt_broker import Broker, broker_fixture  # noqa: F401  (the fixture)

# Bounds every wait for a message to travel broker -> listener -> queue -> store.
WAIT_S = 10.0


@dataclass
class MqttPipeline:
    server: EmbeddedServer
    listener: MqttListener
    api: httpx.AsyncClient
    broker: Broker

    async def publish(self, topic: str, payload: Any) -> None:
        body = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        await asyncio.to_thread(self.broker.publish, topic, body)

    async def positions(self, device_id: str) -> list[dict[str, Any]]:
        assert await self.server.processor.drain(WAIT_S), "processor did not catch up"
        response = await self.api.get(f"/v1/vehicles/{device_id}/positions")
        assert response.status_code == 200, response.text
        positions: list[dict[str, Any]] = response.json()["positions"]
        return positions

    async def dead_letters(self) -> list[dict[str, Any]]:
        body = (await self.api.get("/v1/dead-letters")).json()
        letters: list[dict[str, Any]] = body["dead_letters"]
        return letters


async def eventually(check: Callable[[], Awaitable[bool]]) -> bool:
    """Poll ``check`` until it returns True or WAIT_S passes."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


@asynccontextmanager
async def open_pipeline(
    data_dir: Path, broker: Broker, capacity_records: int = 1000, **mqtt: Any
) -> AsyncIterator[MqttPipeline]:
    settings = load_settings(
        environ={},
        overrides={
            "server": {"data_dir": str(data_dir), "port": 0},
            "queue": {"capacity_records": capacity_records},
            "mqtt": {"enabled": True, "host": broker.host, "port": broker.port, **mqtt},
        },
    )
    server = EmbeddedServer(settings)
    await server.start()
    try:
        listener = next(item for item in server.listeners if isinstance(item, MqttListener))
        await asyncio.wait_for(listener.subscribed.wait(), WAIT_S)
        async with httpx.AsyncClient(base_url=server.url) as api:
            yield MqttPipeline(server, listener, api, broker)
    finally:
        await server.close()


def record(device_id: str | None = "truck-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ts": now_ms(), "lat": 48.1, "lon": 11.5, "speed_kmh": 42.0}
    if device_id is not None:
        body["device_id"] = device_id
    body.update(fields)
    return body


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_single_object_stored(tmp_path: Path, broker: Broker, protocol: str) -> None:
    async with open_pipeline(tmp_path / "data", broker, protocol=protocol) as pipeline:
        await pipeline.publish("fleet/truck-1/telemetry", record())

        async def stored() -> bool:
            return len(await pipeline.positions("truck-1")) == 1

        assert await eventually(stored)
        (position,) = await pipeline.positions("truck-1")
        assert position["source"] == "mqtt"
        assert position["reported_speed_kmh"] == 42.0


async def test_array_stored(tmp_path: Path, broker: Broker) -> None:
    base_ms = now_ms() - 10_000
    batch = [record("van-2", ts=base_ms + i * 1000) for i in range(5)]
    async with open_pipeline(tmp_path / "data", broker) as pipeline:
        await pipeline.publish("fleet/van-2/telemetry", batch)

        async def stored() -> bool:
            return len(await pipeline.positions("van-2")) == 5

        assert await eventually(stored)


async def test_device_id_from_topic(tmp_path: Path, broker: Broker) -> None:
    async with open_pipeline(tmp_path / "data", broker) as pipeline:
        await pipeline.publish("fleet/from-topic/telemetry", record(device_id=None))
        await pipeline.publish("fleet/other/telemetry", [record(device_id=None)])

        async def stored() -> bool:
            return (
                len(await pipeline.positions("from-topic")) == 1
                and len(await pipeline.positions("other")) == 1
            )

        assert await eventually(stored)


async def test_payload_device_id_wins(tmp_path: Path, broker: Broker) -> None:
    async with open_pipeline(tmp_path / "data", broker) as pipeline:
        await pipeline.publish("fleet/topic-id/telemetry", record("payload-id"))

        async def stored() -> bool:
            return len(await pipeline.positions("payload-id")) == 1

        assert await eventually(stored)
        assert await pipeline.positions("topic-id") == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"42", "invalid_type"),
        (msgspec.json.encode({"device_id": "x", "ts": 1, "lat": 95, "lon": 0}), "out_of_range"),
    ],
)
async def test_bad_payload_dead_letter(
    tmp_path: Path, broker: Broker, payload: bytes, reason: str
) -> None:
    async with open_pipeline(tmp_path / "data", broker) as pipeline:
        await pipeline.publish("fleet/bad/telemetry", payload)

        async def dead_lettered() -> bool:
            return len(await pipeline.dead_letters()) == 1

        assert await eventually(dead_lettered)
        (letter,) = await pipeline.dead_letters()
        assert letter["reason"] == reason
        assert letter["source"] == "mqtt"


async def test_queue_full_redelivered_once(tmp_path: Path, broker: Broker) -> None:
    """A message that found the queue full is not acknowledged, so the broker sends it again
    to the next process with the same client id, which stores it once."""
    data_dir = tmp_path / "data"
    # A capacity of 0 makes the real SQLite queue reject every publish as full.
    async with open_pipeline(data_dir, broker, capacity_records=0) as pipeline:
        await pipeline.publish("fleet/held/telemetry", record("held"))

        async def refused() -> bool:
            return pipeline.listener.queue_full_batches >= 1

        assert await eventually(refused)
        assert await pipeline.positions("held") == []

    async with open_pipeline(data_dir, broker) as pipeline:

        async def stored() -> bool:
            return len(await pipeline.positions("held")) >= 1

        assert await eventually(stored)
        # Give a duplicate delivery time to arrive before counting.
        await asyncio.sleep(0.5)
        assert len(await pipeline.positions("held")) == 1


async def test_acknowledged_not_redelivered(tmp_path: Path, broker: Broker) -> None:
    data_dir = tmp_path / "data"
    async with open_pipeline(data_dir, broker) as pipeline:
        await pipeline.publish("fleet/once/telemetry", record("once"))

        async def stored() -> bool:
            return len(await pipeline.positions("once")) == 1

        assert await eventually(stored)

    async with open_pipeline(data_dir, broker) as pipeline:
        await asyncio.sleep(0.5)
        assert len(await pipeline.positions("once")) == 1


async def test_describe_has_no_password(tmp_path: Path, broker: Broker) -> None:
    async with open_pipeline(
        tmp_path / "data", broker, username="", password="s3cret-value"
    ) as pipeline:
        text = pipeline.listener.describe()
    assert "s3cret-value" not in text
    assert "$share/fleetpulse/fleet/+/telemetry" in text
