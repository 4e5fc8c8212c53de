"""replay(): shifting recorded traces in time and sending them to a small ingest server."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from fleetpulse.sim import ReplayOptions, replay
from fleetpulse.sim.replay import device_id_for, schedule
from fleetpulse.sim.traces import TracePoint, read_trace
from tests.sim.conftest import IngestStub

TRACES = Path(__file__).parents[1] / "data" / "traces"
MUNICH_15S = TRACES / "barefoot_munich_x0001-015_15s.json"
ENVIROCAR = TRACES / "envirocar_track_5e61052477e02d42aa97fe9e_dodge_caliber_2020-03-05.geojson"
NOW_MS = 1_700_000_000_000


def _points(*offsets_s: int) -> list[TracePoint]:
    return [TracePoint(1_600_000_000_000 + s * 1000, 48.0, 11.0) for s in offsets_s]


def test_schedule_ends_when_replay_ends() -> None:
    points = _points(0, 10, 20, 100)

    items = list(schedule([("car", points)], NOW_MS, 10.0, keep_times=False))

    stamps = [records[0].ts for _, records in items]
    assert stamps[-1] == NOW_MS + 100_000 // 10
    assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [10_000, 10_000, 80_000]


@pytest.mark.parametrize("speed", [1.0, 3.0, 10.0, math.inf])
def test_schedule_never_ahead_of_send(speed: float) -> None:
    points = _points(0, 1, 2, 30, 31, 600)

    for offset_s, records in schedule([("car", points)], NOW_MS, speed, keep_times=False):
        earliest_send_ms = NOW_MS + (0 if math.isinf(speed) else offset_s * 1000 / speed)
        assert records[0].ts <= earliest_send_ms


def test_schedule_keep_times() -> None:
    points = _points(0, 5, 9)

    stamps = [r[0].ts for _, r in schedule([("car", points)], NOW_MS, 1.0, keep_times=True)]

    assert stamps == [p.ts_ms for p in points]


def test_schedule_merges_traces_by_offset() -> None:
    items = list(
        schedule([("a", _points(0, 10)), ("b", _points(0, 5, 20))], NOW_MS, 1.0, keep_times=False)
    )

    assert [records[0].device_id for _, records in items] == ["a", "b", "b", "a", "b"]


def test_device_id_from_file_name() -> None:
    assert device_id_for("/data/drive 2024-05-01 (Munich).gpx") == "drive-2024-05-01-Munich"
    assert device_id_for("x" * 80 + ".csv") == "x" * 64
    assert device_id_for("@@@.csv") == "trace"


def test_replay_options_device_id_needs_one_file() -> None:
    with pytest.raises(ValueError, match="a device id can name one trace"):
        ReplayOptions(files=["a.gpx", "b.gpx"], device_id="car-1")


async def test_replay_sends_every_point(ingest_stub: IngestStub) -> None:
    options = ReplayOptions(files=[str(MUNICH_15S)], url=ingest_stub.url, speed=math.inf)

    summary = await replay(options)

    assert summary.points == 80
    assert summary.accepted == 80
    assert summary.rejected == 0
    assert summary.device_ids == ["barefoot_munich_x0001-015_15s"]
    assert all(item.record.speed_kmh is None for item in ingest_stub.accepted)
    assert all(item.ts_ms <= item.received_ms for item in ingest_stub.accepted)


async def test_replay_paced_never_future(ingest_stub: IngestStub) -> None:
    # The 15 s Munich trace spans 1185 s, which takes about 1.2 s at 1000x.
    options = ReplayOptions(
        files=[str(MUNICH_15S)], url=ingest_stub.url, speed=1000.0, device_id="munich"
    )

    summary = await replay(options)

    assert summary.accepted == 80
    assert {item.record.device_id for item in ingest_stub.accepted} == {"munich"}
    assert all(item.ts_ms <= item.received_ms for item in ingest_stub.accepted)
    stamps = [item.ts_ms for item in ingest_stub.accepted]
    spacing = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert set(spacing) == {15_000}


async def test_replay_envirocar_keeps_measurements(ingest_stub: IngestStub) -> None:
    options = ReplayOptions(files=[str(ENVIROCAR)], url=ingest_stub.url, speed=math.inf)

    summary = await replay(options)

    points = read_trace(ENVIROCAR)
    assert summary.accepted == 334
    speeds = sorted(item.record.speed_kmh or 0.0 for item in ingest_stub.accepted)
    assert speeds == sorted(p.speed_kmh or 0.0 for p in points)


async def test_replay_keep_times_sends_recorded_times(ingest_stub: IngestStub) -> None:
    options = ReplayOptions(
        files=[str(MUNICH_15S)], url=ingest_stub.url, speed=math.inf, keep_times=True
    )

    summary = await replay(options)

    # September 2014 is older than the server's default 30-day window.
    assert summary.rejected == 80
    assert summary.rejected_by_reason == {"ts_too_old": 80}
    assert summary.first_ts_ms == read_trace(MUNICH_15S)[0].ts_ms


async def test_replay_two_files_two_devices(ingest_stub: IngestStub) -> None:
    options = ReplayOptions(
        files=[str(MUNICH_15S), str(MUNICH_15S)], url=ingest_stub.url, speed=math.inf
    )

    summary = await replay(options)

    assert summary.accepted == 160
    assert summary.device_ids == [
        "barefoot_munich_x0001-015_15s",
        "barefoot_munich_x0001-015_15s-2",
    ]


async def test_replay_ends_near_now(ingest_stub: IngestStub) -> None:
    before_ms = time.time_ns() // 1_000_000
    options = ReplayOptions(files=[str(MUNICH_15S)], url=ingest_stub.url, speed=math.inf)

    summary = await replay(options)

    assert summary.last_ts_ms >= before_ms
    assert summary.last_ts_ms - summary.first_ts_ms == 1_185_000
