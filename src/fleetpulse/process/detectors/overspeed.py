"""Overspeed: the speed used stays above the vehicle's limit for a minimum duration.

One noisy fix is not an episode: the speed must stay above the limit for
``overspeed_min_duration_s``. A confirmed episode ends when the speed falls to
``overspeed_hysteresis_kmh`` below the limit. The record status shows the alert from
confirmation to the end.

Each confirmed episode emits its event twice, both times with ``ts_ms`` at the episode
start, so the store replaces the first copy with the second. The first copy comes at
confirmation with the details so far and ``"ongoing": true``, so a live feed shows the
alert while the vehicle is still speeding. The second comes at the end with the final
maximum speed and duration and ``"ongoing": false``.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import DETAIL_ONGOING, OVERSPEED, SEVERITY_WARNING
from fleetpulse.process.detectors.base import MS_PER_S, NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class OverspeedState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A candidate or confirmed episode. Append new fields at the end.

    ``active`` is True once the episode has lasted ``overspeed_min_duration_s``.
    """

    start_ms: int | None = None
    last_above_ms: int | None = None
    max_speed_kmh: float = 0.0
    limit_kmh: float = 0.0
    active: bool = False


def detect_overspeed(
    state: OverspeedState, sample: Sample, settings: Settings
) -> tuple[OverspeedState, tuple[Event, ...]]:
    """Track overspeed episodes and emit each confirmed episode's event at confirmation
    (ongoing) and again at its end (final).

    NOTE: the final copy needs a record with a speed below the hysteresis band. Until the
    vehicle sends one, for example while it is offline, the stored event stays ongoing.
    """
    speed_kmh = sample.enriched.speed_kmh
    if speed_kmh is None:
        return state, NO_EVENTS

    ts_ms = sample.record.ts_ms
    limit_kmh = settings.overspeed_limit_kmh(sample.record.device_id)
    if state.active:
        if speed_kmh > limit_kmh - settings.detectors.overspeed_hysteresis_kmh:
            return _extend(state, speed_kmh, ts_ms), NO_EVENTS
        return OverspeedState(), (_episode_event(state, sample, ongoing=False),)

    if speed_kmh <= limit_kmh:
        return (OverspeedState() if state.start_ms is not None else state), NO_EVENTS
    if state.start_ms is None:
        new_state = OverspeedState(
            start_ms=ts_ms, last_above_ms=ts_ms, max_speed_kmh=speed_kmh, limit_kmh=limit_kmh
        )
    else:
        new_state = _extend(state, speed_kmh, ts_ms)

    assert new_state.start_ms is not None
    above_s = (ts_ms - new_state.start_ms) / MS_PER_S
    if above_s < settings.detectors.overspeed_min_duration_s:
        return new_state, NO_EVENTS

    confirmed = msgspec.structs.replace(new_state, active=True)
    return confirmed, (_episode_event(confirmed, sample, ongoing=True),)


def _extend(state: OverspeedState, speed_kmh: float, ts_ms: int) -> OverspeedState:
    return msgspec.structs.replace(
        state, last_above_ms=ts_ms, max_speed_kmh=max(state.max_speed_kmh, speed_kmh)
    )


def _episode_event(state: OverspeedState, sample: Sample, ongoing: bool) -> Event:
    assert state.start_ms is not None and state.last_above_ms is not None
    return make_event(
        sample,
        OVERSPEED,
        SEVERITY_WARNING,
        state.start_ms,
        {
            "limit_kmh": state.limit_kmh,
            "max_speed_kmh": round(state.max_speed_kmh, 1),
            "duration_s": (state.last_above_ms - state.start_ms) / MS_PER_S,
            DETAIL_ONGOING: ongoing,
        },
    )
