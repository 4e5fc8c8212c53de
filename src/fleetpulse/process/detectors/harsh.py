"""Harsh braking and harsh acceleration, from the speeds the device reports.

The acceleration of a pair of consecutive reported speeds at most
``harsh_max_interval_s`` apart is compared with ``harsh_braking_mps2`` and
``harsh_acceleration_mps2``. Speeds implied from GPS fixes are not used: their
differences are dominated by position noise. Consecutive harsh pairs of one kind make
one episode.

Each episode emits its event twice, both times with ``ts_ms`` at the episode start, so
the store replaces the first copy with the second. The first copy comes at the first
harsh pair with ``"ongoing": true``, so a live feed shows it at once. The second comes
at the next pair that is not harsh in the same direction, with the final peak, end
speed and duration and ``"ongoing": false``.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import (
    DETAIL_ONGOING,
    HARSH_ACCELERATION,
    HARSH_BRAKING,
    SEVERITY_WARNING,
)
from fleetpulse.process.detectors.base import KMH_TO_MPS, MS_PER_S, NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class HarshState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The previous reported speed and the episode in progress. Append new fields at the end.

    ``kind`` is HARSH_BRAKING, HARSH_ACCELERATION or None outside an episode.
    """

    speed_kmh: float | None = None
    ts_ms: int | None = None
    kind: str | None = None
    start_ms: int = 0
    start_speed_kmh: float = 0.0
    peak_mps2: float = 0.0


def detect_harsh(
    state: HarshState, sample: Sample, settings: Settings
) -> tuple[HarshState, tuple[Event, ...]]:
    """Track harsh braking and acceleration episodes and emit each episode's event at its
    first harsh pair (ongoing) and again at its end (final).

    NOTE: the end is seen only at the next reported speed. Until the vehicle sends one,
    for example after a crash that cut its power, the stored event stays ongoing.
    """
    speed_kmh = sample.record.speed_kmh
    if speed_kmh is None:
        return state, NO_EVENTS

    ts_ms = sample.record.ts_ms
    kind: str | None = None
    accel_mps2 = 0.0
    if state.speed_kmh is not None and state.ts_ms is not None:
        interval_s = (ts_ms - state.ts_ms) / MS_PER_S
        if 0.0 < interval_s <= settings.detectors.harsh_max_interval_s:
            accel_mps2 = (speed_kmh - state.speed_kmh) * KMH_TO_MPS / interval_s
            kind = _kind_of(accel_mps2, settings)

    if kind is not None and kind == state.kind:
        grown = msgspec.structs.replace(
            state, speed_kmh=speed_kmh, ts_ms=ts_ms, peak_mps2=max(state.peak_mps2, abs(accel_mps2))
        )
        return grown, NO_EVENTS

    ended: tuple[Event, ...] = NO_EVENTS
    if state.kind is not None:
        ended = (_episode_event(state, sample, ongoing=False),)
    if kind is None:
        return HarshState(speed_kmh=speed_kmh, ts_ms=ts_ms), ended

    # A new episode starts, possibly on the record that ended one of the other kind.
    assert state.ts_ms is not None and state.speed_kmh is not None
    started = HarshState(
        speed_kmh=speed_kmh,
        ts_ms=ts_ms,
        kind=kind,
        start_ms=state.ts_ms,
        start_speed_kmh=state.speed_kmh,
        peak_mps2=abs(accel_mps2),
    )
    return started, (*ended, _episode_event(started, sample, ongoing=True))


def _kind_of(accel_mps2: float, settings: Settings) -> str | None:
    if accel_mps2 <= -settings.detectors.harsh_braking_mps2:
        return HARSH_BRAKING
    if accel_mps2 >= settings.detectors.harsh_acceleration_mps2:
        return HARSH_ACCELERATION
    return None


def _episode_event(state: HarshState, sample: Sample, ongoing: bool) -> Event:
    assert state.kind is not None
    assert state.ts_ms is not None
    assert state.speed_kmh is not None
    return make_event(
        sample,
        state.kind,
        SEVERITY_WARNING,
        state.start_ms,
        {
            "peak_mps2": round(state.peak_mps2, 2),
            "from_speed_kmh": state.start_speed_kmh,
            "to_speed_kmh": state.speed_kmh,
            "duration_s": (state.ts_ms - state.start_ms) / MS_PER_S,
            DETAIL_ONGOING: ongoing,
        },
    )
