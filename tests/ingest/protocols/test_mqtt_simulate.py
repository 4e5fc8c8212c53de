"""``simulate --protocol mqtt`` through a real Mosquitto broker into a real pipeline."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from fleetpulse.ingest.protocols.mqtt import MqttListener
from fleetpulse.server import EmbeddedServer
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.simulation import simulate
from fleetpulse.sim.transports import open_transport
from fleetpulse.sim.transports.mqtt import MqttTransport
from tests.api.conftest import pipeline_settings
from tests.mqtt_broker import Broker, broker_fixture  # noqa: F401  (the fixture)

WAIT_S = 10.0


def test_transport_registered() -> None:
    options = SimulationOptions(protocol="mqtt", url="mqtt://127.0.0.1:1883")
    assert isinstance(open_transport(options), MqttTransport)


def test_url_scheme_checked() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        open_transport(SimulationOptions(protocol="mqtt", url="http://127.0.0.1:1883"))


async def test_simulate_mqtt_end_to_end(tmp_path: Path, broker: Broker) -> None:
    settings = pipeline_settings(tmp_path / "data")
    section = msgspec.structs.replace(
        settings.mqtt, enabled=True, host=broker.host, port=broker.port
    )
    server = EmbeddedServer(msgspec.structs.replace(settings, mqtt=section))
    await server.start()
    try:
        (listener,) = [item for item in server.listeners if isinstance(item, MqttListener)]
        await asyncio.wait_for(listener.subscribed.wait(), WAIT_S)
        options = SimulationOptions(
            vehicles=3,
            duration_s=20,
            speed=float("inf"),
            protocol="mqtt",
            url=f"mqtt://{broker.host}:{broker.port}",
            truth_path=str(tmp_path / "truth.jsonl"),
            duplicate_share=0.0,
            bad_share=0.0,
        )
        summary = await simulate(options)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            assert await server.processor.drain(WAIT_S)
            counts = await server.store.counts()
            if counts.records >= summary.records_generated:
                break
            await asyncio.sleep(0.05)
        vehicles = await server.store.vehicles()
    finally:
        await server.close()

    assert summary.accepted == summary.records_generated
    assert counts.records == summary.records_generated
    assert len(vehicles) == 3
