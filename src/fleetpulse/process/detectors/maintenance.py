"""Maintenance: service intervals by odometer (``service_every_km``) and engine hours.

Service points are the multiples of an interval: 15,000 km, 30,000 km, and so on.
A service is due from ``DUE_AHEAD_FRACTION`` of an interval before a point until the
vehicle reaches it. One ``maintenance_due`` event is emitted per point and kind, when
the vehicle enters that window or jumps past the point without a record inside it.

Engine hours are counted by fleetpulse from the time between records while the ignition
is on, starting at zero with the vehicle's first record. A gap longer than
``process.offline_after_s`` is not counted, because nothing is known about it. Points
the odometer had already passed at a vehicle's first reading are taken as serviced.
"""

from __future__ import annotations

import math

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import INFO, MAINTENANCE_DUE
from fleetpulse.process.detectors.base import MS_PER_S, NO_EVENTS, make_event
from fleetpulse.process.sample import Sample

# A service is booked ahead: 5 % of a 15,000 km interval is 750 km, about a week of a
# delivery van's driving.
DUE_AHEAD_FRACTION = 0.05
S_PER_H = 3600.0
M_PER_KM = 1000.0

KIND_ODOMETER = "odometer"
KIND_ENGINE_HOURS = "engine_hours"


class MaintenanceState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Engine time so far, the service points reported and the newest assessment.

    ``reported_km`` is None until the first odometer reading. ``running_since_ms`` is the
    time of the newest record with the ignition on. Append new fields at the end.
    """

    engine_s: float = 0.0
    running_since_ms: int | None = None
    reported_km: float | None = None
    reported_engine_h: float = 0.0
    due: bool = False
    remaining_km: float | None = None
    remaining_engine_h: float | None = None


def service_intervals(settings: Settings, device_id: str) -> tuple[float, float]:
    """Return (km, engine hours) between services of one vehicle; 0.0 means no interval."""
    every_km = settings.detectors.service_every_km
    every_engine_h = settings.detectors.service_every_engine_h
    vehicle = settings.vehicles.get(device_id)
    if vehicle is not None:
        if vehicle.service_every_km is not None:
            every_km = vehicle.service_every_km
        if vehicle.service_every_engine_h is not None:
            every_engine_h = vehicle.service_every_engine_h
    return every_km, every_engine_h


def has_service_intervals(settings: Settings) -> bool:
    """Return whether any vehicle, or the fleet default, has a service interval."""
    if settings.detectors.service_every_km > 0 or settings.detectors.service_every_engine_h > 0:
        return True
    return any(
        (vehicle.service_every_km or 0.0) > 0 or (vehicle.service_every_engine_h or 0.0) > 0
        for vehicle in settings.vehicles.values()
    )


def detect_maintenance(
    state: MaintenanceState, sample: Sample, settings: Settings
) -> tuple[MaintenanceState, tuple[Event, ...]]:
    """Count engine time and emit maintenance_due once per service point and kind."""
    record = sample.record
    every_km, every_engine_h = service_intervals(settings, record.device_id)
    if every_km <= 0 and every_engine_h <= 0:
        return state, NO_EVENTS

    engine_s = state.engine_s
    if state.running_since_ms is not None:
        gap_s = (record.ts_ms - state.running_since_ms) / MS_PER_S
        if gap_s <= settings.process.offline_after_s:
            engine_s += gap_s
    running_since_ms = record.ts_ms if sample.ignition is True else None

    events: list[Event] = []
    due = False
    reported_km = state.reported_km
    remaining_km = None
    if every_km > 0 and sample.odometer_m is not None:
        km = sample.odometer_m / M_PER_KM
        if reported_km is None:
            reported_km = math.floor(km / every_km) * every_km
        reported_km, remaining_km, event = _check_point(
            sample, KIND_ODOMETER, km, every_km, reported_km
        )
        due = remaining_km <= every_km * DUE_AHEAD_FRACTION
        if event is not None:
            events.append(event)

    reported_engine_h = state.reported_engine_h
    remaining_engine_h = None
    if every_engine_h > 0:
        reported_engine_h, remaining_engine_h, event = _check_point(
            sample, KIND_ENGINE_HOURS, engine_s / S_PER_H, every_engine_h, reported_engine_h
        )
        due = due or remaining_engine_h <= every_engine_h * DUE_AHEAD_FRACTION
        if event is not None:
            events.append(event)

    new_state = MaintenanceState(
        engine_s=engine_s,
        running_since_ms=running_since_ms,
        reported_km=reported_km,
        reported_engine_h=reported_engine_h,
        due=due,
        remaining_km=remaining_km,
        remaining_engine_h=remaining_engine_h,
    )
    return new_state, tuple(events) if events else NO_EVENTS


def _check_point(
    sample: Sample, kind: str, value: float, every: float, reported: float
) -> tuple[float, float, Event | None]:
    """Return the newest reported point, the distance to the next point and a new event.

    ``value`` and ``every`` are in km for the odometer and in hours for engine hours.
    """
    passed = math.floor(value / every) * every
    upcoming = passed + every
    remaining = upcoming - value
    if upcoming - every * DUE_AHEAD_FRACTION <= value and upcoming > reported:
        point = upcoming
    elif passed > reported:
        # The vehicle jumped past the whole window, for example after a long data gap.
        point = passed
    else:
        return reported, remaining, None

    unit = "km" if kind == KIND_ODOMETER else "engine_h"
    details = {
        "kind": kind,
        f"service_at_{unit}": point,
        f"remaining_{unit}": round(point - value, 3),
        f"every_{unit}": every,
    }
    return point, remaining, make_event(sample, MAINTENANCE_DUE, INFO, sample.record.ts_ms, details)
