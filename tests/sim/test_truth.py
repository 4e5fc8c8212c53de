"""The ground truth: every injected behaviour is recorded, and matches the records sent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest

from fleetpulse.config import DetectorSettings
from fleetpulse.model import vocabulary
from fleetpulse.model.record import RecordIn
from fleetpulse.sim import truth
from fleetpulse.sim.fleet import Fleet
from fleetpulse.sim.kinematics import COAST_MPS2
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.truth import TruthLog, TruthSummary, read_truth
from fleetpulse.sim.vehicle import SPEEDING_HOLD_S, SPEEDING_TARGET_KMH
from fleetpulse.sim.wire import DeviceRecord
from tests.sim.helpers import FORCED, START_MS, FleetRun, run_fleet, ts_ms

DURATION_S = 7200


@pytest.fixture(scope="module")
def run() -> FleetRun:
    options = SimulationOptions(
        vehicles=12,
        duration_s=DURATION_S,
        seed=23,
        truth_path=None,
        behaviours=FORCED,
        bad_share=0.02,
        duplicate_share=0.005,
    )
    return run_fleet(options)


def _entries(run: FleetRun, kind: str) -> list[truth.TruthEntry]:
    return [entry for entry in run.truth if entry.type == kind]


def _records_between(run: FleetRun, entry: truth.TruthEntry) -> list[DeviceRecord]:
    records = run.by_device[entry.device_id]
    return [r for r in records if entry.start_ms <= ts_ms(r) <= entry.end_ms]


@pytest.mark.parametrize(
    "kind",
    [
        truth.SPEEDING,
        truth.HARSH_BRAKING,
        truth.HARSH_ACCELERATION,
        truth.ENGINE_FAULT,
        truth.ENGINE_OVERHEAT,
        truth.LOW_FUEL,
        truth.REFUEL,
        truth.FUEL_THEFT,
        truth.IDLING,
        truth.TRIP,
        truth.OUTAGE,
        truth.GPS_JUMP,
        truth.BAD_RECORD,
        truth.DUPLICATE,
    ],
)
def test_truth_has_every_type(run: FleetRun, kind: str) -> None:
    assert _entries(run, kind), f"no {kind} entry in a forced two-hour run"


def test_truth_entries_inside_timeline(run: FleetRun) -> None:
    end_ms = START_MS + DURATION_S * 1000
    for entry in run.truth:
        assert START_MS <= entry.start_ms <= entry.end_ms <= end_ms, entry
        assert entry.device_id in run.by_device, entry


def test_truth_events_are_known_types(run: FleetRun) -> None:
    events = {entry.event for entry in run.truth if entry.event is not None}

    assert events <= set(vocabulary.EVENT_TYPES)
    assert vocabulary.OVERSPEED in events


def test_truth_speeding_above_limit(run: FleetRun) -> None:
    for entry in _entries(run, truth.SPEEDING):
        speeds = [r.speed_kmh for r in _records_between(run, entry)]
        assert all(speed is not None and speed > 120.0 for speed in speeds), entry
        if entry.event is not None:
            assert entry.values["duration_s"] >= 10.0


def test_truth_injected_speeding_lasts(run: FleetRun) -> None:
    expected = [e for e in _entries(run, truth.SPEEDING) if e.event == vocabulary.OVERSPEED]

    # Above the limit for the hold, then easing off from the target down to the limit,
    # plus one record interval for the records on either side.
    limit_kmh = DetectorSettings().overspeed_limit_kmh
    ease_off_s = (SPEEDING_TARGET_KMH[1] - limit_kmh) / 3.6 / COAST_MPS2
    longest_s = SPEEDING_HOLD_S[1] + ease_off_s + 1.0
    assert expected
    for entry in expected:
        assert entry.values["duration_s"] >= SPEEDING_HOLD_S[0], entry
        assert entry.values["duration_s"] <= longest_s, entry


def test_truth_harsh_braking_speeds_match(run: FleetRun) -> None:
    for entry in _entries(run, truth.HARSH_BRAKING):
        records = _records_between(run, entry)
        assert records[0].speed_kmh == entry.values["from_speed_kmh"]
        assert records[-1].speed_kmh == entry.values["to_speed_kmh"]
        assert 1000 <= entry.end_ms - entry.start_ms <= 2000


def test_truth_idling_stopped_with_engine_on(run: FleetRun) -> None:
    for entry in _entries(run, truth.IDLING):
        records = _records_between(run, entry)
        stopped = [r for r in records if ts_ms(r) < entry.end_ms]
        assert all(r.ignition and r.speed_kmh == 0.0 for r in stopped), entry
        assert entry.values["duration_s"] >= 300.0


def test_truth_fuel_theft_while_parked(run: FleetRun) -> None:
    for entry in _entries(run, truth.FUEL_THEFT):
        records = _records_between(run, entry)
        assert all(not r.ignition for r in records), entry
        assert entry.values["from_pct"] - entry.values["to_pct"] > 10.0
        assert entry.event == vocabulary.FUEL_DROP


def test_truth_low_fuel_then_refuel(run: FleetRun) -> None:
    refuels = _entries(run, truth.REFUEL)
    for entry in _entries(run, truth.LOW_FUEL):
        assert entry.values["min_fuel_pct"] <= 10.0
        if entry.complete:
            # The low-fuel episode ends while the tank fills.
            assert any(
                refuel.device_id == entry.device_id
                and refuel.start_ms <= entry.end_ms <= refuel.end_ms
                for refuel in refuels
            ), entry


def test_truth_engine_fault_code_in_records(run: FleetRun) -> None:
    for entry in _entries(run, truth.ENGINE_FAULT):
        record = _records_between(run, entry)[0]
        assert record.dtc is not None
        assert entry.values["code"] in record.dtc


def test_truth_overheat_above_105(run: FleetRun) -> None:
    for entry in _entries(run, truth.ENGINE_OVERHEAT):
        assert entry.values["max_coolant_c"] > 105.0


def test_truth_outage_sent_in_one_burst(run: FleetRun) -> None:
    for entry in _entries(run, truth.OUTAGE):
        held = entry.values["buffered_records"]
        assert held == (entry.end_ms - entry.start_ms) // 1000 + 1
        assert 30 <= held <= 301
        burst = _tick_holding(run, entry.device_id, entry.start_ms)
        in_burst = [
            r for r in burst if isinstance(r, DeviceRecord) and r.device_id == entry.device_id
        ]
        assert len(in_burst) >= held


def test_truth_duplicates_sent_twice(run: FleetRun) -> None:
    sendings = Counter(
        (record.device_id, ts_ms(record))
        for _, records in run.ticks
        for record in records
        if isinstance(record, DeviceRecord)
    )
    duplicates = _entries(run, truth.DUPLICATE)
    for entry in duplicates:
        assert sendings[(entry.device_id, entry.start_ms)] == 2, entry
    assert sum(1 for count in sendings.values() if count > 1) == len(duplicates)


def test_truth_bad_records_fail_validation(run: FleetRun) -> None:
    bad_entries = _entries(run, truth.BAD_RECORD)

    assert len(bad_entries) == len(run.bad)
    for entry, record in zip(bad_entries, run.bad, strict=True):
        assert entry.values["reason"] in vocabulary.REJECT_REASONS
        assert _fails_record_in(record) or entry.values["reason"].startswith("ts_"), entry


def test_truth_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    log = TruthLog(path)
    options = SimulationOptions(vehicles=3, duration_s=600, truth_path=None, behaviours=FORCED)
    fleet = Fleet(options, START_MS, log)
    for _ in fleet.ticks():
        pass
    summary = TruthSummary(
        seed=options.seed,
        vehicles=3,
        rate_hz=1.0,
        duration_s=600,
        start_ms=START_MS,
        end_ms=fleet.last_ts_ms,
        records_generated=fleet.records_generated,
        records_sent=0,
        bad_records=sum(log.bad_by_reason.values()),
        bad_records_by_reason=dict(log.bad_by_reason),
        duplicates=log.counts[truth.DUPLICATE],
        entries_by_type=dict(log.counts),
    )
    log.close(summary)

    entries, read_back = read_truth(path)
    lines = path.read_bytes().splitlines()
    assert read_back == summary
    assert len(entries) == sum(log.counts.values())
    assert len(lines) == len(entries) + 1
    assert msgspec.json.decode(lines[-1])["type"] == "summary"


def _tick_holding(run: FleetRun, device_id: str, first_ms: int) -> list[object]:
    for _, records in run.ticks:
        for record in records:
            if isinstance(record, DeviceRecord) and record.device_id == device_id:
                if ts_ms(record) == first_ms:
                    return list(records)
    raise AssertionError(f"no tick holds the record of {device_id} at {first_ms}")


def _fails_record_in(record: dict[str, object]) -> bool:
    try:
        msgspec.convert(record, RecordIn)
    except msgspec.ValidationError:
        return True
    return False
