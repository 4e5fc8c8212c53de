"""Geofence enter and exit, for circle and polygon fences from ``settings.geofences``.

Only fixes that position the vehicle count: a record without a fix, or one flagged as
a GPS jump, neither enters nor exits a fence, so an outlier cannot make a fence flap.
All fences entered at one record share one event (and all exited, another), because an
event is identified by (device_id, type, ts_ms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import GEOFENCE_ENTER, GEOFENCE_EXIT, INFO
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.geo import Area
from fleetpulse.process.sample import Sample

GeofenceDetector = Callable[
    ["GeofenceState", Sample, Settings], tuple["GeofenceState", tuple[Event, ...]]
]


class GeofenceState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The ids of the fences the vehicle is inside. Append new fields at the end.

    ``located`` is False until the first fix, which sets ``inside`` without events: a
    vehicle first seen inside a fence did not enter it while being watched.
    """

    inside: tuple[str, ...] = ()
    located: bool = False


def detect_geofences(
    state: GeofenceState, sample: Sample, settings: Settings, areas: Sequence[Area]
) -> tuple[GeofenceState, tuple[Event, ...]]:
    """Emit geofence_enter and geofence_exit when the set of fences around a fix changes."""
    if not sample.fix:
        return state, NO_EVENTS

    lat = sample.record.lat
    lon = sample.record.lon
    inside = tuple(area.id for area in areas if area.contains(lat, lon))
    if state.located and inside == state.inside:
        return state, NO_EVENTS

    new_state = GeofenceState(inside=inside, located=True)
    if not state.located:
        return new_state, NO_EVENTS

    ts_ms = sample.record.ts_ms
    events: list[Event] = []
    entered = [fence_id for fence_id in inside if fence_id not in state.inside]
    exited = [fence_id for fence_id in state.inside if fence_id not in inside]
    if entered:
        events.append(make_event(sample, GEOFENCE_ENTER, INFO, ts_ms, {"geofences": entered}))
    if exited:
        events.append(make_event(sample, GEOFENCE_EXIT, INFO, ts_ms, {"geofences": exited}))
    return new_state, tuple(events)


def geofence_detector(areas: Sequence[Area]) -> GeofenceDetector:
    """Bind prepared fences to ``detect_geofences``, giving the chain's detector signature."""
    bound = tuple(areas)

    def detect(
        state: GeofenceState, sample: Sample, settings: Settings
    ) -> tuple[GeofenceState, tuple[Event, ...]]:
        return detect_geofences(state, sample, settings, bound)

    return detect
