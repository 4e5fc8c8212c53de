"""``simulate --protocol osmand`` against a real OsmAnd listener."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fleetpulse.ingest.protocols.osmand import OsmandListener
from fleetpulse.ingest.protocols.osmand.decoding import decode_parameters
from fleetpulse.server import EmbeddedServer
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.simulation import simulate
from fleetpulse.sim.transports import adapt_options, open_transport
from fleetpulse.sim.transports.osmand import OsmandTransport, to_parameters
from fleetpulse.sim.wire import DeviceRecord
from tests.api.conftest import pipeline_settings

DRAIN_TIMEOUT_S = 10.0


def test_transport_registered() -> None:
    options = SimulationOptions(protocol="osmand", url="http://127.0.0.1:5055")
    assert isinstance(open_transport(options), OsmandTransport)


def test_bad_records_switched_off() -> None:
    assert adapt_options(SimulationOptions(protocol="osmand", bad_share=0.2)).bad_share == 0.0


def test_parameters_round_trip() -> None:
    record = DeviceRecord(
        device_id="sim-1",
        ts=1_796_000_000_123,
        lat=48.1,
        lon=11.5,
        speed_kmh=50.0,
        heading_deg=181.0,
        altitude_m=512.4,
        accuracy_m=4.0,
    )
    decoded = decode_parameters(to_parameters(record), 0, "knots")
    assert decoded.ts == 1_796_000_000_123
    assert (decoded.lat, decoded.lon) == (48.1, 11.5)
    assert decoded.speed_kmh == pytest.approx(50.0, abs=0.01)
    assert decoded.heading_deg == 181.0


async def test_simulate_osmand_end_to_end(tmp_path: Path) -> None:
    settings = pipeline_settings(tmp_path / "data")
    section = msgspec.structs.replace(settings.osmand, enabled=True, port=0)
    server = EmbeddedServer(msgspec.structs.replace(settings, osmand=section))
    await server.start()
    try:
        (listener,) = [item for item in server.listeners if isinstance(item, OsmandListener)]
        options = SimulationOptions(
            vehicles=3,
            duration_s=20,
            speed=float("inf"),
            protocol="osmand",
            url=f"http://127.0.0.1:{listener.address[1]}",
            truth_path=str(tmp_path / "truth.jsonl"),
            duplicate_share=0.0,
        )
        summary = await simulate(options)
        assert await server.processor.drain(DRAIN_TIMEOUT_S)
        vehicles = await server.store.vehicles()
    finally:
        await server.close()

    assert summary.accepted == summary.records_generated
    assert summary.rejected == 0
    assert len(vehicles) == 3
