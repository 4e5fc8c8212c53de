from __future__ import annotations

from fleetpulse.config import Settings, VehicleSettings
from fleetpulse.model.event import Event
from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import ALERT, DETAIL_ONGOING, NORMAL, OVERSPEED
from fleetpulse.process.batch import process_records
from fleetpulse.process.detectors.overspeed import OverspeedState, detect_overspeed
from fleetpulse.process.state import VehicleState
from tests.process.timeline import at, drive, events_of, make_settings, record, samples


def speeds(start_s: int, values: list[float]) -> list[Record]:
    return [record(start_s + i, speed_kmh=value) for i, value in enumerate(values)]


def emissions(timeline: list[Record], settings: Settings) -> list[tuple[int, Event]]:
    """Return (ts_ms of the record that emitted it, event) for every event emitted."""
    state = OverspeedState()
    found: list[tuple[int, Event]] = []
    for sample in samples(timeline, settings):
        state, events = detect_overspeed(state, sample, settings)
        found.extend((sample.record.ts_ms, event) for event in events)
    return found


def episode_settings() -> Settings:
    return make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=10.0)


def episode() -> list[Record]:
    # Above the limit from 5 s, confirmed at 15 s, peak of 125 km/h at 17 s, the last
    # record above the limit at 27 s, back below the hysteresis band at 28 s.
    return speeds(0, [90.0] * 5 + [110.0] * 12 + [125.0] + [110.0] * 10 + [80.0] * 5)


def key(event: Event) -> tuple[str, str, int]:
    return event.device_id, event.type, event.ts_ms


def test_overspeed_single_fix_no_event() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0)
    timeline = speeds(0, [90.0] * 5 + [150.0] + [90.0] * 20)
    state, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    assert emitted == []
    assert not state.active


def test_overspeed_emitted_at_confirmation() -> None:
    (emitted_ms, event), _ = emissions(episode(), episode_settings())
    assert emitted_ms == at(15)
    assert event.type == OVERSPEED
    assert event.ts_ms == at(5)
    assert event.details[DETAIL_ONGOING] is True
    assert event.details["limit_kmh"] == 100.0
    assert event.details["max_speed_kmh"] == 110.0
    assert event.details["duration_s"] == 10.0


def test_overspeed_emitted_again_at_end() -> None:
    _, (emitted_ms, event) = emissions(episode(), episode_settings())
    assert emitted_ms == at(28)
    assert event.ts_ms == at(5)
    assert event.details[DETAIL_ONGOING] is False
    assert event.details["limit_kmh"] == 100.0
    assert event.details["max_speed_kmh"] == 125.0
    assert event.details["duration_s"] == 22.0


def test_overspeed_copies_share_key() -> None:
    (_, ongoing), (_, final) = emissions(episode(), episode_settings())
    assert key(ongoing) == key(final)
    assert ongoing.severity == final.severity


def test_overspeed_open_episode_ongoing_only() -> None:
    timeline = speeds(0, [110.0] * 20)
    state, emitted = drive(detect_overspeed, OverspeedState(), timeline, episode_settings())
    (event,) = events_of(emitted, OVERSPEED)
    assert event.details[DETAIL_ONGOING] is True
    assert state.active


def test_overspeed_record_status_from_confirmation() -> None:
    timeline = episode()
    batch = process_records({}, timeline, episode_settings(), at(40))
    statuses = [enriched.status for enriched in batch.records]
    assert statuses[:15] == [NORMAL] * 15
    assert statuses[15:28] == [ALERT] * 13
    assert statuses[28:] == [NORMAL] * 5
    assert batch.records[15].reasons == [OVERSPEED]


def test_overspeed_live_batches() -> None:
    # The processor receives the timeline in three batches. The batch with the confirming
    # record already contains the event, and the last batch contains its final copy.
    settings = episode_settings()
    timeline = episode()
    states: dict[str, VehicleState] = {}
    first = process_records(states, timeline[:16], settings, at(16))
    middle = process_records(states, timeline[16:28], settings, at(28))
    last = process_records(states, timeline[28:], settings, at(40))
    (ongoing,) = events_of(first.events, OVERSPEED)
    (final,) = events_of(last.events, OVERSPEED)
    assert ongoing.details[DETAIL_ONGOING] is True
    assert first.records[-1].status == ALERT
    assert events_of(middle.events, OVERSPEED) == []
    assert key(final) == key(ongoing)
    assert final.details[DETAIL_ONGOING] is False
    assert final.details["max_speed_kmh"] == 125.0


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
    found = emissions(timeline, settings)
    assert [emitted_ms for emitted_ms, _ in found] == [at(5), at(19)]
    assert [event.ts_ms for _, event in found] == [at(0), at(0)]


def test_overspeed_two_episodes() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=5.0)
    timeline = speeds(0, [110.0] * 8 + [80.0] * 5 + [120.0] * 8 + [80.0])
    found = emissions(timeline, settings)
    assert [event.ts_ms for _, event in found] == [at(0), at(0), at(13), at(13)]
    assert [event.details[DETAIL_ONGOING] for _, event in found] == [True, False, True, False]


def test_overspeed_vehicle_limit() -> None:
    settings = make_settings(
        overspeed_limit_kmh=130.0,
        overspeed_min_duration_s=5.0,
        vehicles={"truck-7": VehicleSettings(overspeed_limit_kmh=80.0)},
    )
    timeline = speeds(0, [90.0] * 10 + [60.0])
    _, emitted = drive(detect_overspeed, OverspeedState(), timeline, settings)
    assert [event.details["limit_kmh"] for event in events_of(emitted, OVERSPEED)] == [80.0, 80.0]


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
