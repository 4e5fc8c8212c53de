from __future__ import annotations

from typing import Any

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import DETAIL_ONGOING, FUEL_DROP
from fleetpulse.process.detectors.fuel_drop import FuelDropState, detect_fuel_drop
from tests.process.timeline import (
    at,
    drive,
    drive_east,
    events_of,
    make_settings,
    record,
    samples,
)

# Records of a parked vehicle come this far apart.
PARKED_STEP_S = 60


def parked(start_s: int, levels: list[float], **fields: Any) -> list[Record]:
    return [
        record(start_s + PARKED_STEP_S * i, fuel_pct=level, **fields)
        for i, level in enumerate(levels)
    ]


def drive_away(start_s: int, fuel_pct: float) -> list[Record]:
    return drive_east(start_s, 60, speed_kmh=36.0, fuel_pct=fuel_pct)


def emissions(timeline: list[Record], settings: Settings) -> list[tuple[int, Event]]:
    """Return (ts_ms of the record that emitted it, event) for every event emitted."""
    state = FuelDropState()
    found: list[tuple[int, Event]] = []
    for sample in samples(timeline, settings):
        state, events = detect_fuel_drop(state, sample, settings)
        found.extend((sample.record.ts_ms, event) for event in events)
    return found


def siphoned(from_pct: float, to_pct: float, step_pct: float = 1.0) -> list[float]:
    """Levels falling from ``from_pct`` to ``to_pct`` by ``step_pct`` per reading."""
    count = round((from_pct - to_pct) / step_pct)
    return [round(from_pct - step_pct * i, 1) for i in range(count + 1)]


def test_fuel_drop_while_parked() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [60.0, 60.0, 59.5, 50.0, 50.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    (event,) = events_of(emitted, FUEL_DROP)
    assert event.ts_ms == at(180)
    assert event.details["from_pct"] == 60.0
    assert event.details["to_pct"] == 50.0
    assert event.details["drop_pct"] == 10.0
    assert event.details[DETAIL_ONGOING] is True


def test_fuel_drop_slow_loss_counts() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    # Two 5 % losses at one stop: measured against the level when it stopped.
    timeline = parked(0, [60.0, 55.0, 50.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    assert [e.ts_ms for e in events_of(emitted, FUEL_DROP)] == [at(120)]


def test_fuel_drop_theft_one_identity() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    # A 22 % siphoning at 1 % a minute. The level is 8 % below the reference at 540 s.
    timeline = parked(0, [60.0, *siphoned(60.0, 38.0), 38.0, 38.0])
    found = emissions(timeline, settings)
    assert {event.ts_ms for _, event in found} == {at(540)}
    assert all(event.type == FUEL_DROP for _, event in found)


def test_fuel_drop_copies_at_each_step() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [60.0, *siphoned(60.0, 38.0), 38.0, 38.0])
    found = emissions(timeline, settings)
    # Copies at detection (52 %) and one step further down (44 %). The level stops at
    # 38 %, above the next step at 36 %.
    assert [emitted_ms for emitted_ms, _ in found] == [at(540), at(1020)]
    assert [event.details["to_pct"] for _, event in found] == [52.0, 44.0]
    assert all(event.details[DETAIL_ONGOING] is True for _, event in found)


def test_fuel_drop_final_copy_on_departure() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    stop = parked(0, [60.0, *siphoned(60.0, 38.0), 38.0])
    timeline = stop + drive_away(len(stop) * PARKED_STEP_S, 38.0)
    found = emissions(timeline, settings)
    emitted_ms, final = found[-1]
    assert emitted_ms > stop[-1].ts_ms
    assert final.ts_ms == at(540)
    assert final.details[DETAIL_ONGOING] is False
    assert final.details["from_pct"] == 60.0
    assert final.details["to_pct"] == 38.0
    assert final.details["drop_pct"] == 22.0


def test_fuel_drop_final_copy_once() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    stop = parked(0, [60.0, 50.0])
    timeline = stop + drive_away(180, 50.0)
    finals = [e for _, e in emissions(timeline, settings) if not e.details[DETAIL_ONGOING]]
    assert len(finals) == 1


def test_fuel_drop_noise_keeps_episode() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    # After the drop the gauge wanders by a few percent: no new event, no end.
    timeline = parked(0, [60.0, 50.0, 53.0, 49.5, 52.0, 50.0])
    state, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    assert len(events_of(emitted, FUEL_DROP)) == 1
    assert state.drop_ts_ms == at(60)
    assert state.low_pct == 49.5


def test_fuel_drop_consumption_while_driving() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = drive_east(0, 600, speed_kmh=50.0, step_s=60)
    timeline = [
        record((rec.ts_ms - timeline[0].ts_ms) / 1000, rec.lat, rec.lon, fuel_pct=60.0 - 2.0 * i)
        for i, rec in enumerate(timeline)
    ]
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    assert emitted == []


def test_fuel_drop_after_refuel() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [20.0, 80.0, 70.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    (event,) = events_of(emitted, FUEL_DROP)
    assert event.details["from_pct"] == 80.0


def test_fuel_drop_refuel_ends_episode() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [60.0, 50.0, 90.0])
    found = emissions(timeline, settings)
    emitted_ms, final = found[-1]
    assert emitted_ms == at(120)
    assert final.ts_ms == at(60)
    assert final.details[DETAIL_ONGOING] is False
    assert final.details["to_pct"] == 50.0


def test_fuel_drop_theft_after_refuel_is_new() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [60.0, 50.0, 90.0, 80.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    identities = {e.ts_ms for e in events_of(emitted, FUEL_DROP)}
    assert identities == {at(60), at(180)}


def test_fuel_drop_after_departure_is_new() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    first = parked(0, [60.0, 50.0])
    drive_s = 180
    leg = drive_away(drive_s, 50.0)[:30]
    # The second stop is where the drive ended: a new episode with its own ts_ms.
    second_s = drive_s + 29 + PARKED_STEP_S
    second = parked(second_s, [50.0, 40.0], lat=leg[-1].lat, lon=leg[-1].lon)
    timeline = first + leg + second
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    identities = sorted({e.ts_ms for e in events_of(emitted, FUEL_DROP)})
    assert identities == [at(60), at(second_s + 60)]
