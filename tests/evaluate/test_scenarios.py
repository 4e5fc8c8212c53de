"""The simulator faults behind the evaluation scenarios change the records as named."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from fleetpulse.evaluate.scenarios import SCENARIOS
from fleetpulse.sim.options import DeviceFaults, SimulationOptions
from fleetpulse.sim.sender import Sender
from fleetpulse.sim.wire import DeviceRecord
from tests.sim.helpers import FORCED, START_MS, run_fleet, ts_ms

BASE = SimulationOptions(vehicles=4, duration_s=1800, seed=3, truth_path=None, bad_share=0.0)


def _options(**faults: Any) -> SimulationOptions:
    return msgspec.structs.replace(BASE, faults=DeviceFaults(**faults))


def test_scenarios_all_named() -> None:
    expected = {
        "clean",
        "gps_noise",
        "gps_jumps",
        "parked_drift",
        "bursts",
        "duplicates",
        "odometer_glitches",
        "clock_skew",
    }
    assert set(SCENARIOS) == expected


def test_faults_default_records_unchanged() -> None:
    plain = run_fleet(BASE)
    explicit = run_fleet(_options())
    assert plain.by_device == explicit.by_device


def test_odometer_zero_share() -> None:
    run = run_fleet(_options(odometer_zero_share=0.05))
    records = [r for rs in run.by_device.values() for r in rs]
    zeros = sum(1 for record in records if record.odometer_m == 0.0)
    glitches = [entry for entry in run.truth if entry.type == "odometer_glitch"]
    assert 0 < zeros < len(records) * 0.1
    assert zeros == len(glitches)


def test_clock_skew_shifts_device_time() -> None:
    run = run_fleet(_options(clock_skew_max_s=120.0))
    offsets = {e.device_id: e.values["offset_ms"] for e in run.truth if e.type == "clock_skew"}
    assert len(offsets) == BASE.vehicles
    for device_id, records in run.by_device.items():
        assert ts_ms(records[0]) == START_MS + offsets[device_id]
        assert abs(offsets[device_id]) <= 120_000


def test_clock_skew_truth_in_device_time() -> None:
    run = run_fleet(msgspec.structs.replace(_options(clock_skew_max_s=120.0), behaviours=FORCED))
    stamps = {(r.device_id, ts_ms(r)) for rs in run.by_device.values() for r in rs}
    episodes = [e for e in run.truth if e.type in ("speeding", "harsh_braking", "trip")]
    assert episodes
    for entry in episodes:
        assert (entry.device_id, entry.start_ms) in stamps


def test_bursts_newest_first() -> None:
    options = msgspec.structs.replace(
        _options(bursts_newest_first=True), behaviours=FORCED, duplicate_share=0.0
    )
    run = run_fleet(options)
    outages = [e for e in run.truth if e.type == "outage" and e.complete]
    assert outages
    for outage in outages:
        sent = [
            ts_ms(r)
            for _, records in run.ticks
            for r in records
            if isinstance(r, DeviceRecord)
            and r.device_id == outage.device_id
            and outage.start_ms <= ts_ms(r) <= outage.values["sent_at_ms"]
        ]
        assert sent == sorted(sent, reverse=True)


def test_parked_drift_only_parked() -> None:
    calm = run_fleet(BASE)
    drifting = run_fleet(_options(parked_drift_m=15.0))
    moved = 0
    for device_id, records in calm.by_device.items():
        for before, after in zip(records, drifting.by_device[device_id], strict=True):
            if before.speed_kmh:
                assert (before.lat, before.lon) == (after.lat, after.lon)
            elif (before.lat, before.lon) != (after.lat, after.lon):
                moved += 1
    assert moved > 0


async def test_sender_keeps_device_upload_whole() -> None:
    bodies: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        records = msgspec.json.decode(request.content)
        bodies.append([record["device_id"] for record in records])
        return httpx.Response(200, json={"accepted": len(records), "rejected": 0, "errors": []})

    sender = Sender(
        "http://127.0.0.1:9", batch_size=10, concurrency=1, transport=httpx.MockTransport(handler)
    )
    await sender.start()
    try:
        await sender.add([_record("a", i) for i in range(6)])
        await sender.add([_record("b", i) for i in range(8)])
        await sender.drain()
    finally:
        await sender.close()
    assert bodies == [["a"] * 6, ["b"] * 8]


def _record(device_id: str, index: int) -> DeviceRecord:
    return DeviceRecord(device_id=device_id, ts=START_MS + index * 1000, lat=48.1, lon=11.5)


def test_scenarios_valid_options() -> None:
    for scenario in SCENARIOS.values():
        options = SimulationOptions(
            behaviours=scenario.behaviours,
            faults=scenario.faults,
            duplicate_share=scenario.duplicate_share,
            bad_share=scenario.bad_share,
        )
        assert options.faults == scenario.faults
