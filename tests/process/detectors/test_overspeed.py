from __future__ import annotations

from fleetpulse.config import VehicleSettings
from fleetpulse.model.vocabulary import OVERSPEED
from fleetpulse.process.detectors.overspeed import OverspeedState, detect_overspeed
from tests.process.timeline import at, drive, events_of, make_settings, record


def speeds(start_s: int, values: list[float]) -> list:
    return [record(start_s + i, speed_kmh=value) for i, value in enumerate(values)]


def test_overspeed_single_fix_no_event() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0)
    timeline = speeds(0, [90.0] * 5 + [150.0] + [90.0] * 20)
    state, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    assert emitted == []
    assert not state.active


def test_overspeed_episode_one_event() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=10.0)
    timeline = speeds(0, [90.0] * 5 + [110.0] * 10 + [125.0] + [110.0] * 10 + [80.0] * 5)
    _, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    (event,) = events_of(emitted, OVERSPEED)
    assert event.ts_ms == at(5)
    assert event.details["limit_kmh"] == 100.0
    assert event.details["max_speed_kmh"] == 125.0
    assert event.details["duration_s"] == 20.0


def test_overspeed_active_after_min_duration() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=10.0)
    short, _ = drive(detect_overspeed, OverspeedState(), speeds(0, [110.0] * 10), settings)
    long, _ = drive(detect_overspeed, OverspeedState(), speeds(0, [110.0] * 11), settings)
    assert not short.active
    assert long.active


def test_overspeed_hysteresis_holds_episode() -> None:
    settings = make_settings(
        overspeed_limit_kmh=100.0, overspeed_min_duration_s=5.0, overspeed_hysteresis_kmh=5.0
    )
    # Dips to 97 km/h stay within the hysteresis band and do not end the episode.
    timeline = speeds(0, [110.0] * 10 + [97.0, 110.0, 97.0] * 3 + [90.0])
    _, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    (event,) = events_of(emitted, OVERSPEED)
    assert event.ts_ms == at(0)


def test_overspeed_two_episodes() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=5.0)
    timeline = speeds(0, [110.0] * 8 + [80.0] * 5 + [120.0] * 8 + [80.0])
    _, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    assert [event.ts_ms for event in events_of(emitted, OVERSPEED)] == [at(0), at(13)]


def test_overspeed_vehicle_limit() -> None:
    settings = make_settings(
        overspeed_limit_kmh=130.0,
        overspeed_min_duration_s=5.0,
        vehicles={"truck-7": VehicleSettings(overspeed_limit_kmh=80.0)},
    )
    timeline = speeds(0, [90.0] * 10 + [60.0])
    _, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    (event,) = events_of(emitted, OVERSPEED)
    assert event.details["limit_kmh"] == 80.0


def test_overspeed_other_vehicle_global_limit() -> None:
    settings = make_settings(
        overspeed_limit_kmh=130.0,
        overspeed_min_duration_s=5.0,
        vehicles={"van-1": VehicleSettings(overspeed_limit_kmh=80.0)},
    )
    timeline = speeds(0, [90.0] * 10 + [60.0])
    _, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    assert emitted == []


def test_overspeed_unknown_speed_keeps_state() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=5.0)
    state, _ = drive(detect_overspeed, OverspeedState(), speeds(0, [110.0] * 6), settings)
    blind = record(6, valid=False)
    after, emitted = drive(detect_overspeed, state, [blind], settings)
    assert after is state
    assert emitted == []
