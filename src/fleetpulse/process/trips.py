"""Trips: from the first moving record to the stop or ignition off that ends the drive.

A trip starts when the vehicle starts moving with the ignition not known to be off. It
ends on ignition off, after ``trip_end_stop_s`` stationary, or at a gap in the data
longer than ``trip_end_stop_s``. If the vehicle had stopped, the trip ends when it stopped.
Stops inside a trip count as its idle time. A trip shorter than ``trip_min_distance_m``
is discarded without any event, so trip_start is emitted only once the trip reaches
that distance, with ``ts_ms`` at the trip's start.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event, Trip
from fleetpulse.model.vocabulary import INFO, TRIP_END, TRIP_START
from fleetpulse.process.detectors.base import MS_PER_S, NO_EVENTS, make_event
from fleetpulse.process.sample import Sample

MPS_TO_KMH = 3.6


class TripState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The open trip, with ``start_ms`` None when there is none. Append new fields at the end.

    ``last_*`` is the newest moving fix, ``paused_ms`` when the vehicle stopped inside
    the trip, and ``started`` whether trip_start was emitted.
    """

    start_ms: int | None = None
    start_lat: float = 0.0
    start_lon: float = 0.0
    last_ms: int = 0
    last_lat: float = 0.0
    last_lon: float = 0.0
    distance_m: float = 0.0
    max_speed_kmh: float = 0.0
    idle_s: float = 0.0
    paused_ms: int | None = None
    started: bool = False


NO_TRIP = TripState()


def detect_trip(
    state: TripState, sample: Sample, settings: Settings
) -> tuple[TripState, tuple[Event | Trip, ...]]:
    """Open, extend and close the vehicle's trip, and emit trip events and each closed Trip."""
    emitted: tuple[Event | Trip, ...] = NO_EVENTS
    end_stop_s = settings.detectors.trip_end_stop_s
    if state.start_ms is not None and sample.gap_s is not None and sample.gap_s > end_stop_s:
        emitted = _close(state, sample, _end_ms(state), settings)
        state = NO_TRIP

    if state.start_ms is None:
        # A trip starts at a real position: a moving record without a fix waits for one.
        if not sample.moving or not sample.fix or sample.ignition is False:
            return state, emitted
        state = _open(sample)

    state = _extend(state, sample)
    if not state.started and state.distance_m >= settings.detectors.trip_min_distance_m:
        state = msgspec.structs.replace(state, started=True)
        emitted += (_start_event(state, sample),)

    ts_ms = sample.record.ts_ms
    if sample.ignition is False:
        end_ms = state.paused_ms if state.paused_ms is not None else ts_ms
        return NO_TRIP, emitted + _close(state, sample, end_ms, settings)
    if state.paused_ms is not None and (ts_ms - state.paused_ms) / MS_PER_S >= end_stop_s:
        return NO_TRIP, emitted + _close(state, sample, state.paused_ms, settings)
    return state, emitted


def open_trip(state: TripState, device_id: str) -> Trip | None:
    """Return the open trip as it stands, or None if there is none or it is still too short."""
    if state.start_ms is None or not state.started:
        return None
    return _trip(state, device_id, None)


def _open(sample: Sample) -> TripState:
    record = sample.record
    return TripState(
        start_ms=record.ts_ms,
        start_lat=record.lat,
        start_lon=record.lon,
        last_ms=record.ts_ms,
        last_lat=record.lat,
        last_lon=record.lon,
    )


def _extend(state: TripState, sample: Sample) -> TripState:
    record = sample.record
    if not sample.moving:
        if state.paused_ms is not None:
            return state
        paused_ms = sample.stopped_at_ms if sample.stopped_at_ms is not None else record.ts_ms
        return msgspec.structs.replace(state, paused_ms=paused_ms)

    idle_s = state.idle_s
    if state.paused_ms is not None:
        idle_s += (record.ts_ms - state.paused_ms) / MS_PER_S
    speed_kmh = sample.enriched.speed_kmh
    max_speed_kmh = state.max_speed_kmh
    if speed_kmh is not None and speed_kmh > max_speed_kmh:
        max_speed_kmh = speed_kmh
    # A moving record without a fix (a tunnel) keeps the last known position.
    last_lat = record.lat if sample.fix else state.last_lat
    last_lon = record.lon if sample.fix else state.last_lon
    return msgspec.structs.replace(
        state,
        last_ms=record.ts_ms,
        last_lat=last_lat,
        last_lon=last_lon,
        distance_m=state.distance_m + sample.enriched.distance_m,
        max_speed_kmh=max_speed_kmh,
        idle_s=idle_s,
        paused_ms=None,
    )


def _end_ms(state: TripState) -> int:
    return state.paused_ms if state.paused_ms is not None else state.last_ms


def _close(
    state: TripState, sample: Sample, end_ms: int, settings: Settings
) -> tuple[Event | Trip, ...]:
    if state.distance_m < settings.detectors.trip_min_distance_m:
        return NO_EVENTS
    trip = _trip(state, sample.record.device_id, end_ms)
    details = {
        "distance_m": round(trip.distance_m, 1),
        "duration_s": trip.duration_s,
        "max_speed_kmh": round(trip.max_speed_kmh, 1),
        "avg_speed_kmh": round(trip.avg_speed_kmh, 1),
        "idle_s": trip.idle_s,
        "start_ts_ms": trip.start_ts_ms,
    }
    end_event = make_event(sample, TRIP_END, INFO, end_ms, details)
    if state.started:
        return (end_event, trip)
    return (_start_event(state, sample), end_event, trip)


def _start_event(state: TripState, sample: Sample) -> Event:
    assert state.start_ms is not None
    details = {"lat": state.start_lat, "lon": state.start_lon}
    return make_event(sample, TRIP_START, INFO, state.start_ms, details)


def _trip(state: TripState, device_id: str, end_ms: int | None) -> Trip:
    assert state.start_ms is not None
    until_ms = end_ms if end_ms is not None else _end_ms(state)
    duration_s = max(0.0, (until_ms - state.start_ms) / MS_PER_S)
    avg_speed_kmh = state.distance_m / duration_s * MPS_TO_KMH if duration_s > 0.0 else 0.0
    return Trip(
        device_id=device_id,
        start_ts_ms=state.start_ms,
        start_lat=state.start_lat,
        start_lon=state.start_lon,
        end_ts_ms=end_ms,
        end_lat=state.last_lat if end_ms is not None else None,
        end_lon=state.last_lon if end_ms is not None else None,
        distance_m=state.distance_m,
        duration_s=duration_s,
        max_speed_kmh=state.max_speed_kmh,
        avg_speed_kmh=avg_speed_kmh,
        idle_s=state.idle_s,
    )
