from __future__ import annotations

from fleetpulse.model.vocabulary import OFFLINE_EVENT
from fleetpulse.process.detectors.offline import OfflineState, detect_offline
from tests.process.timeline import T0_MS, make_settings


def sweep(state: OfflineState, now_ms: int, last_received_at_ms: int = T0_MS):
    settings = make_settings(offline_after_s=600.0)
    return detect_offline(state, "truck-7", T0_MS - 5, last_received_at_ms, now_ms, settings)


def test_offline_before_threshold_quiet() -> None:
    state, events = sweep(OfflineState(), T0_MS + 599_000)
    assert events == ()
    assert not state.offline


def test_offline_once_per_period() -> None:
    state, events = sweep(OfflineState(), T0_MS + 601_000)
    (event,) = events
    assert event.type == OFFLINE_EVENT
    assert event.ts_ms == T0_MS + 600_000
    again, more = sweep(state, T0_MS + 900_000)
    assert more == ()
    assert again.offline
