"""Each kind of bad record breaks one rule and names the reason the server must give."""

from __future__ import annotations

import random

import msgspec
import pytest

from fleetpulse.model import vocabulary
from fleetpulse.model.record import RecordIn
from fleetpulse.sim.badrecords import BREAKERS
from fleetpulse.sim.wire import DeviceRecord
from tests.sim.conftest import check_record

NOW_MS = 1_700_000_000_000
FUTURE_MS = NOW_MS + 86_400_000

GOOD = DeviceRecord(
    device_id="sim-0001",
    ts=NOW_MS - 5_000,
    lat=48.137,
    lon=11.575,
    speed_kmh=42.0,
    heading_deg=90.0,
    ignition=True,
    fuel_pct=50.0,
)

EXPECTED = {
    "lat_out_of_range": vocabulary.OUT_OF_RANGE,
    "speed_out_of_range": vocabulary.OUT_OF_RANGE,
    "missing_lat": vocabulary.MISSING_FIELD,
    "missing_ts": vocabulary.MISSING_FIELD,
    "nan_string": vocabulary.NOT_FINITE,
    "ts_in_future": vocabulary.TS_IN_FUTURE,
    "ts_in_seconds": vocabulary.TS_TOO_OLD,
    "ts_without_offset": vocabulary.TS_NO_TIMEZONE,
    "ts_unparseable": vocabulary.TS_INVALID,
    "unknown_field": vocabulary.UNKNOWN_FIELD,
    "lat_as_string": vocabulary.INVALID_TYPE,
    "empty_device_id": vocabulary.INVALID_DEVICE_ID,
}


def test_breakers_cover_expected_kinds() -> None:
    assert set(BREAKERS) == set(EXPECTED)


def test_good_record_passes_stub_checks() -> None:
    reason, _, _ = check_record(msgspec.to_builtins(GOOD), NOW_MS)

    assert reason is None


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("seed", range(3))
def test_breaker_gives_expected_reason(kind: str, seed: int) -> None:
    record = msgspec.to_builtins(GOOD)

    reason = BREAKERS[kind](record, random.Random(seed), FUTURE_MS)

    assert reason == EXPECTED[kind]
    verdict, _, _ = check_record(record, NOW_MS)
    assert verdict is not None


@pytest.mark.parametrize("kind", sorted(k for k, r in EXPECTED.items() if not r.startswith("ts_")))
def test_breaker_fails_record_type(kind: str) -> None:
    record = msgspec.to_builtins(GOOD)
    BREAKERS[kind](record, random.Random(0), FUTURE_MS)

    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(record, RecordIn)


def test_real_validator_gives_truth_reasons() -> None:
    decode = pytest.importorskip("fleetpulse.ingest.decode")
    from fleetpulse.config import Settings
    from fleetpulse.sim.fleet import Fleet
    from fleetpulse.sim.options import SimulationOptions
    from fleetpulse.sim.truth import BAD_RECORD, TruthLog
    from fleetpulse.sim.wire import encode_batch

    options = SimulationOptions(vehicles=5, duration_s=300, bad_share=0.2, truth_path=None)
    log = TruthLog(None, keep=True)
    fleet = Fleet(options, NOW_MS - 300_000, log, future_ms=FUTURE_MS)
    reasons: list[str] = []
    for _, records in fleet.ticks():
        batch = decode.decode_body(encode_batch(records), "application/json", NOW_MS, Settings())
        reasons.extend(reject.reason for reject in batch.rejects)

    expected = [entry.values["reason"] for entry in log.entries if entry.type == BAD_RECORD]
    assert len(expected) > 100
    assert reasons == expected
