"""Simulator transports: the registry, and the teltonika transport against a real server."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fleetpulse.ingest.protocols.teltonika import TeltonikaListener
from fleetpulse.ingest.protocols.teltonika.decoding import CODEC_8_EXTENDED, decode_packet
from fleetpulse.ingest.protocols.teltonika.encoding import encode_packet
from fleetpulse.ingest.protocols.teltonika.mapping import FMB, to_record_in
from fleetpulse.server import EmbeddedServer
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.simulation import simulate
from fleetpulse.sim.transports import adapt_options, open_transport, transport_names
from fleetpulse.sim.transports.http import HttpTransport
from fleetpulse.sim.transports.teltonika import imei_for, to_avl
from fleetpulse.sim.wire import DeviceRecord
from tests.api.conftest import pipeline_settings

DRAIN_TIMEOUT_S = 10.0


def test_registry_lists_http_and_teltonika() -> None:
    assert {"http", "teltonika"} <= set(transport_names())


def test_http_transport_is_sender() -> None:
    assert isinstance(open_transport(SimulationOptions()), HttpTransport)


def test_unknown_protocol_rejected() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        open_transport(SimulationOptions(protocol="carrier-pigeon"))


def test_teltonika_options_use_imeis() -> None:
    options = adapt_options(SimulationOptions(protocol="teltonika", bad_share=0.1))
    assert options.bad_share == 0.0
    assert len(options.device_prefix + "0001") == 15


def test_imei_derived_from_device_id() -> None:
    assert imei_for("350000000000001") == "350000000000001"
    derived = imei_for("sim-0001")
    assert len(derived) == 15
    assert derived.isdigit()
    assert imei_for("sim-0001") == derived


def test_device_record_round_trip() -> None:
    record = DeviceRecord(
        device_id="350000000000001",
        ts=1_796_000_000_000,
        lat=48.1,
        lon=11.5,
        speed_kmh=57.6,
        heading_deg=181.0,
        altitude_m=512.4,
        ignition=True,
        battery_v=13.9,
        odometer_m=12_345.6,
        fuel_pct=55.2,
        engine_rpm=2100,
        coolant_c=-3.5,
    )
    (avl,) = decode_packet(encode_packet(CODEC_8_EXTENDED, [to_avl(record)])).records
    decoded = to_record_in("350000000000001", avl, FMB)
    assert (decoded.lat, decoded.lon) == (pytest.approx(48.1), pytest.approx(11.5))
    assert decoded.speed_kmh == 58.0
    assert decoded.ignition is True
    assert decoded.battery_v == pytest.approx(13.9)
    assert decoded.odometer_m == 12_346.0
    assert decoded.fuel_pct == 55.0
    assert decoded.coolant_c == pytest.approx(-3.5)


async def test_simulate_teltonika_end_to_end(tmp_path: Path) -> None:
    settings = pipeline_settings(tmp_path / "data")
    section = msgspec.structs.replace(settings.teltonika, enabled=True, port=0)
    server = EmbeddedServer(msgspec.structs.replace(settings, teltonika=section))
    await server.start()
    try:
        (listener,) = [item for item in server.listeners if isinstance(item, TeltonikaListener)]
        options = SimulationOptions(
            vehicles=3,
            duration_s=30,
            speed=float("inf"),
            protocol="teltonika",
            url=f"tcp://127.0.0.1:{listener.port}",
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
    assert sorted(v.device_id for v in vehicles) == [f"35000000000000{n}" for n in (1, 2, 3)]
    truth = (tmp_path / "truth.jsonl").read_text()
    assert "350000000000001" in truth
